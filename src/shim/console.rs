//! The console socket: the runtime connects to it and sends the pty master
//! of a `-t` container (or exec) over SCM_RIGHTS.

use std::io::{self, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use tokio::net::UnixListener;

pub struct ConsoleSocket {
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    pub fn bind(path: &Path) -> io::Result<ConsoleSocket> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        Ok(ConsoleSocket {
            path: path.to_path_buf(),
            listener,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accept the runtime's connection and receive the master.
    pub async fn receive(self, timeout: Duration) -> io::Result<OwnedFd> {
        let (stream, _) = tokio::time::timeout(timeout, self.listener.accept())
            .await
            .map_err(|_| {
                io::Error::new(io::ErrorKind::TimedOut, "no console from the runtime")
            })??;
        let std = stream.into_std()?;
        std.set_nonblocking(false)?;
        std.set_read_timeout(Some(timeout))?;
        let fd = tokio::task::spawn_blocking(move || -> io::Result<OwnedFd> {
            let mut buf = [0u8; 4096];
            let mut iov = [IoSliceMut::new(&mut buf)];
            let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
            let msg = recvmsg::<()>(
                std.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC,
            )?;
            for c in msg.cmsgs()? {
                if let ControlMessageOwned::ScmRights(fds) = c {
                    if let Some(fd) = fds.first() {
                        // SAFETY: the kernel just installed this descriptor in
                        // our table for us (SCM_RIGHTS); nothing else owns it.
                        return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
                    }
                }
            }
            Err(io::Error::other("the runtime sent no console descriptor"))
        })
        .await
        .map_err(io::Error::other)??;
        let _ = std::fs::remove_file(&self.path);
        Ok(fd)
    }
}

/// Set a pty's window size.
pub fn resize(master: i32, width: u16, height: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which lives
    // across the call; a bad fd yields an error, not UB.
    let r = unsafe { libc::ioctl(master, libc::TIOCSWINSZ, &ws) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
