//! Wakes the ledger when the kernel's wall clock is set (NTP stepping it,
//! `date -s`, a Pi without RTC getting the time after boot), so a clock that
//! had run ahead is corrected for at once, not at the next hook, and nothing
//! polls meanwhile: a timerfd armed with TFD_TIMER_CANCEL_ON_SET sleeps until
//! the clock is set. Neither tokio nor a crate offers this; it is three
//! libc calls on one thread that is blocked for its whole life.

/// Calls `on_set` each time the wall clock is set. Returns false (and does
/// nothing) where the kernel cannot tell.
pub fn spawn(on_set: impl Fn() + Send + 'static) -> bool {
    #[cfg(target_os = "linux")]
    {
        linux::spawn(on_set)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = on_set;
        false
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;

    /// Arms the timer at the far end of time: it never expires, it is only
    /// cancelled when the clock is set.
    fn arm(fd: libc::c_int) -> io::Result<()> {
        let far = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                // 2^31 - 1 s: fits a 32-bit time_t (armv7, the ARMv6 musl
                // build) too; `into` widens it where time_t is 64-bit
                // (naming libc::time_t is deprecated on musl).
                tv_sec: i32::MAX.into(),
                tv_nsec: 0,
            },
        };
        // SAFETY: fd is our timerfd; the structs live across the call.
        let r = unsafe {
            libc::timerfd_settime(
                fd,
                libc::TFD_TIMER_ABSTIME | libc::TFD_TIMER_CANCEL_ON_SET,
                &far,
                std::ptr::null_mut(),
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    pub fn spawn(on_set: impl Fn() + Send + 'static) -> bool {
        // SAFETY: plain syscall; the fd is owned by the thread below.
        let fd = unsafe { libc::timerfd_create(libc::CLOCK_REALTIME, libc::TFD_CLOEXEC) };
        if fd < 0 {
            tracing::debug!("no timerfd: {}", io::Error::last_os_error());
            return false;
        }
        if let Err(e) = arm(fd) {
            tracing::debug!("timerfd cannot watch clock changes: {e}");
            // SAFETY: closing the fd we created.
            unsafe { libc::close(fd) };
            return false;
        }
        let spawned = std::thread::Builder::new()
            .name("clockwake".into())
            .spawn(move || loop {
                let mut expirations = 0u64;
                // SAFETY: reads 8 bytes into a u64 we own.
                let n = unsafe {
                    libc::read(
                        fd,
                        (&mut expirations as *mut u64).cast(),
                        std::mem::size_of::<u64>(),
                    )
                };
                let err = io::Error::last_os_error();
                if n < 0 && err.raw_os_error() == Some(libc::ECANCELED) {
                    on_set();
                } else if n < 0 && err.raw_os_error() != Some(libc::EINTR) {
                    tracing::warn!("watching for clock changes stopped: {err}");
                    return;
                }
                if let Err(e) = arm(fd) {
                    tracing::warn!("watching for clock changes stopped: {e}");
                    return;
                }
            });
        spawned.is_ok()
    }
}
