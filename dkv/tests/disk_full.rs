//! A real `dkv-node` on a disk that fills up and then empties again: a
//! tmpfs of a few MiB this test mounts (it needs root, and skips with a
//! message elsewhere). The write that meets the full disk gets an error at
//! once, reads go on, writes resume without a restart once space is back,
//! and every acknowledged write survives SIGKILL and restart.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{free_port, Client, NodeProcess, Reply};

/// A tmpfs mounted for the test, unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    fn new(dir: &Path, size: &str) -> Option<Mount> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        mounted.then(|| Mount(dir.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn free_bytes(path: &Path) -> u64 {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: statvfs fills the struct we pass; the path is NUL-terminated.
    unsafe {
        let mut stat: libc::statvfs = std::mem::zeroed();
        assert_eq!(libc::statvfs(c_path.as_ptr(), &mut stat), 0);
        stat.f_bavail as u64 * stat.f_frsize as u64
    }
}

fn info(client: &mut Client, section: &str) -> String {
    match client.cmd(&[b"INFO", section.as_bytes()]) {
        Reply::Bulk(text) => String::from_utf8(text).unwrap(),
        other => panic!("INFO {section}: {other:?}"),
    }
}

fn start(port: u16, data: &Path) -> NodeProcess {
    NodeProcess::start(
        port,
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "--fsync",
            "always",
            "--snapshot-interval",
            "0",
            "--snapshot-wal-mb",
            "0",
        ],
    )
}

#[test]
fn a_full_disk_fails_writes_at_once_and_they_resume_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_mount) = Mount::new(dir.path(), "12m") else {
        eprintln!("skipped: mounting a tmpfs needs root (CI runs this as root)");
        return;
    };
    let data = dir.path().join("data");
    let port = free_port();
    let mut node = start(port, &data);
    let mut client = Client::connect(node.addr());
    assert_eq!(client.cmd_str("SET before-full yes"), Reply::ok());

    // Leave about 1 MiB free, then write 16 KiB values until the disk says no.
    let filler = dir.path().join("filler");
    let spare = free_bytes(dir.path()).saturating_sub(1 << 20);
    std::fs::write(&filler, vec![0u8; spare as usize]).unwrap();
    let value = vec![b'v'; 16 << 10];
    let mut acked = vec![("before-full".to_string(), b"yes".to_vec())];
    let mut refused_in = None;
    for i in 0..1000 {
        let key = format!("k{i}");
        let started = Instant::now();
        match client.cmd(&[b"SET", key.as_bytes(), &value]) {
            Reply::Simple(ok) if ok == "OK" => acked.push((key, value.clone())),
            Reply::Error(e) => {
                refused_in = Some((started.elapsed(), e));
                break;
            }
            other => panic!("SET {key}: {other:?}"),
        }
    }
    let (took, error) = refused_in.expect("the disk never filled");
    assert!(took < Duration::from_secs(2), "the refusal took {took:?}");
    assert!(error.contains("log"), "{error}");
    // Reads go on; further writes are refused at once, not left hanging.
    assert_eq!(client.cmd_str("GET before-full"), Reply::bulk("yes"));
    let started = Instant::now();
    assert!(matches!(
        client.cmd_str("SET during-full x"),
        Reply::Error(_)
    ));
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(info(&mut client, "persistence").contains("wal_failed:1"));
    // While the disk stays full the log cannot start afresh (its snapshot
    // does not fit): still failed after more than one retry.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(matches!(
        client.cmd_str("SET still-full x"),
        Reply::Error(_)
    ));
    assert!(info(&mut client, "persistence").contains("wal_failed:1"));
    assert_eq!(client.cmd_str("GET before-full"), Reply::bulk("yes"));

    // Space comes back: writes resume with no restart.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if client.cmd_str("SET after-full yes") == Reply::ok() {
            break;
        }
        assert!(Instant::now() < deadline, "writes never resumed");
        std::thread::sleep(Duration::from_millis(200));
    }
    acked.push(("after-full".to_string(), b"yes".to_vec()));
    let persistence = info(&mut client, "persistence");
    assert!(persistence.contains("wal_failed:0"), "{persistence}");
    assert!(persistence.contains("wal_recoveries:1"), "{persistence}");

    // Every acknowledged write survives a kill and a restart.
    drop(client);
    node.signal(libc::SIGKILL);
    node.wait();
    let mut node = start(port, &data);
    let mut client = Client::connect(node.addr());
    for (key, value) in &acked {
        assert_eq!(
            client.cmd(&[b"GET", key.as_bytes()]),
            Reply::Bulk(value.clone()),
            "{key} lost"
        );
    }
    drop(client);
    let started = Instant::now();
    node.signal(libc::SIGTERM);
    assert!(node.wait().success());
    assert!(started.elapsed() < Duration::from_secs(5));
}
