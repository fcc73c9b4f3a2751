//! The serial console on the host's stdin/stdout: output is batched by a writer thread and
//! scanned for a kernel panic; input comes from stdin (raw mode when it is a terminal, with
//! Ctrl-A x to quit, like QEMU's `-serial mon:stdio`).

use std::io::{Read, Write};
use std::sync::{Arc, Condvar, Mutex};

/// What the console has seen that ends a run.
#[derive(Debug, Default)]
pub struct Watch {
    /// The panic line and what followed it, once "Kernel panic - not syncing" was printed.
    pub panic: Option<String>,
    /// The panic report is complete ("---[ end Kernel panic").
    pub panic_done: bool,
    /// The user typed Ctrl-A x.
    pub quit: bool,
    /// The kernel halted ("reboot: System halted"): its CPUs park forever, as on a board
    /// without a power-off driver.
    pub halted: bool,
}

struct Shared {
    out: Vec<u8>,
    closed: bool,
    line: Vec<u8>,
    watch: Watch,
}

/// The console's output side: a `Write` for the UART, shared with the writer thread.
#[derive(Clone)]
pub struct Console {
    inner: Arc<(Mutex<Shared>, Condvar)>,
    /// Woken when the watch changes (the machine's main thread waits on it).
    pub events: Arc<(Mutex<bool>, Condvar)>,
}

const PANIC: &str = "Kernel panic - not syncing";
const PANIC_END: &str = "---[ end Kernel panic";
const HALTED: &str = "reboot: System halted";

impl Console {
    /// A console writing to `out` (stdout in the CLI) from a thread of its own.
    pub fn new(mut out: Box<dyn Write + Send>) -> Console {
        let inner = Arc::new((
            Mutex::new(Shared {
                out: Vec::new(),
                closed: false,
                line: Vec::new(),
                watch: Watch::default(),
            }),
            Condvar::new(),
        ));
        let c = Console {
            inner: inner.clone(),
            events: Arc::new((Mutex::new(false), Condvar::new())),
        };
        std::thread::Builder::new()
            .name("console-out".into())
            .spawn(move || loop {
                let (buf, closed) = {
                    let (m, cv) = &*inner;
                    let mut s = m.lock().unwrap_or_else(|e| e.into_inner());
                    while s.out.is_empty() && !s.closed {
                        s = cv.wait(s).unwrap_or_else(|e| e.into_inner());
                    }
                    (std::mem::take(&mut s.out), s.closed)
                };
                let _ = out.write_all(&buf);
                let _ = out.flush();
                if closed {
                    break;
                }
            })
            .ok();
        c
    }

    fn notify(&self) {
        let (m, cv) = &*self.events;
        *m.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }

    /// Take what ended the run, if anything.
    pub fn with_watch<R>(&self, f: impl FnOnce(&mut Watch) -> R) -> R {
        let mut s = self.inner.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut s.watch)
    }

    /// Flush and stop the writer thread.
    pub fn close(&self) {
        let (m, cv) = &*self.inner;
        m.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        cv.notify_all();
        // Give the writer a moment to drain.
        for _ in 0..100 {
            if m.lock().unwrap_or_else(|e| e.into_inner()).out.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    /// Note that the user asked to quit.
    pub fn quit(&self) {
        self.with_watch(|w| w.quit = true);
        self.notify();
    }
}

impl Write for Console {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut changed = false;
        {
            let (m, cv) = &*self.inner;
            let mut s = m.lock().unwrap_or_else(|e| e.into_inner());
            s.out.extend_from_slice(buf);
            for &b in buf {
                if b == b'\n' {
                    let line = String::from_utf8_lossy(&s.line).into_owned();
                    s.line.clear();
                    if let Some(p) = &mut s.watch.panic {
                        p.push('\n');
                        p.push_str(line.trim_end());
                        if line.contains(PANIC_END) {
                            s.watch.panic_done = true;
                            changed = true;
                        }
                    } else if let Some(i) = line.find(PANIC) {
                        s.watch.panic = Some(line[i..].trim_end().to_string());
                        changed = true;
                    } else if line.contains(HALTED) {
                        s.watch.halted = true;
                        changed = true;
                    }
                } else if s.line.len() < 4096 {
                    s.line.push(b);
                }
            }
            cv.notify_all();
        }
        if changed {
            self.notify();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Restores the terminal's mode when dropped.
pub struct RawMode(Option<libc::termios>);

impl RawMode {
    /// Put stdin in raw mode if it is a terminal.
    pub fn enter() -> RawMode {
        // SAFETY: isatty/tcgetattr/tcsetattr on fd 0 with a properly sized termios value.
        unsafe {
            if libc::isatty(0) != 1 {
                return RawMode(None);
            }
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return RawMode(None);
            }
            let saved = t;
            libc::cfmakeraw(&mut t);
            // Keep output post-processing so "\n" still returns the carriage.
            t.c_oflag |= libc::OPOST;
            libc::tcsetattr(0, libc::TCSANOW, &t);
            RawMode(Some(saved))
        }
    }

    pub fn is_raw(&self) -> bool {
        self.0.is_some()
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = self.0 {
            // SAFETY: restoring the attributes read in `enter`.
            unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) };
        }
    }
}

/// Read stdin on a thread of its own and hand the bytes to `sink` (the UART's receive side).
/// In raw mode Ctrl-A x quits and Ctrl-A Ctrl-A sends one Ctrl-A.
pub fn spawn_input(raw: bool, console: Console, mut sink: impl FnMut(&[u8]) + Send + 'static) {
    std::thread::Builder::new()
        .name("console-in".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = [0u8; 256];
            let mut escape = false;
            loop {
                let n = match stdin.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let mut out = Vec::with_capacity(n);
                for &b in &buf[..n] {
                    if raw && escape {
                        escape = false;
                        match b {
                            b'x' | b'X' => {
                                console.quit();
                                return;
                            }
                            0x01 => out.push(0x01),
                            _ => {}
                        }
                    } else if raw && b == 0x01 {
                        escape = true;
                    } else {
                        out.push(b);
                    }
                }
                if !out.is_empty() {
                    sink(&out);
                }
            }
        })
        .ok();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_text_is_collected() {
        let mut c = Console::new(Box::new(std::io::sink()));
        c.write_all(b"[    1.0] Kernel panic - not syncing: VFS: Unable to mount root fs\n")
            .unwrap();
        c.write_all(b"CPU: 0 PID: 1\n---[ end Kernel panic - not syncing: VFS ]---\n")
            .unwrap();
        c.with_watch(|w| {
            let p = w.panic.as_deref().unwrap();
            assert!(p.starts_with("Kernel panic - not syncing: VFS"));
            assert!(p.contains("CPU: 0 PID: 1"));
            assert!(w.panic_done);
        });
        c.close();
    }

    #[test]
    fn a_halt_is_seen() {
        let mut c = Console::new(Box::new(std::io::sink()));
        c.write_all(b"[   19.7] reboot: System ha").unwrap();
        c.with_watch(|w| assert!(!w.halted));
        c.write_all(b"lted\n").unwrap();
        c.with_watch(|w| assert!(w.halted && w.panic.is_none()));
        c.close();
    }
}
