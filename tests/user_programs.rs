//! Real Debian bookworm arm64 programs under `armboard user`, checked against
//! `qemu-aarch64 -L <sysroot>` and against known-good results.

mod common;

use common::{host, same, sample_bytes, sample_text, Case, Outcome};
use std::path::Path;

fn status_is(want: i32) -> impl Fn(&Path, &Outcome) -> Result<(), String> {
    move |_, o| {
        if o.status == Some(want) {
            Ok(())
        } else {
            Err(format!("exit status {:?}, want {want}", o.status))
        }
    }
}

fn stdout_is(want: Vec<u8>) -> impl Fn(&Path, &Outcome) -> Result<(), String> {
    move |_, o| same("stdout", &o.stdout, &want)
}

/// The host's `tool -dc` turns the guest's stdout back into `want` (a guest compressor's
/// output checked by an independent decoder).
fn host_decodes_to(
    tool: &'static str,
    want: Vec<u8>,
) -> impl Fn(&Path, &Outcome) -> Result<(), String> {
    move |_, o| {
        same(
            &format!("host {tool} -dc of the guest's output"),
            &host(tool, &["-dc"], &o.stdout),
            &want,
        )
    }
}

// ---------------------------------------------------------------------------------------
// busybox (static)

const SH_SCRIPT: &str = r#"# loops and arithmetic
i=0; sum=0; prod=1
while [ $i -lt 100 ]; do
  sum=$((sum + i * i % 13))
  [ $((i % 10)) -eq 9 ] && prod=$(( (prod * (i + 3)) % 1000003 ))
  i=$((i + 1))
done
echo "sum=$sum prod=$prod hex=$(printf '%x' $((sum * 4099))) shift=$(( (1 << 40) >> 7 )) neg=$(( -17 / 5 )),$(( -17 % 5 ))"
# functions and recursion
fib() { if [ $1 -lt 2 ]; then echo $1; else echo $(( $(fib $(($1 - 1))) + $(fib $(($1 - 2))) )); fi; }
echo "fib12=$(fib 12)"
# strings, case, parameter expansion
for w in alpha beta gamma delta epsilon; do
  case $w in
    a*|e*) kind=vowel ;;
    *) kind=consonant ;;
  esac
  printf '%-8s %2d %s %s\n' "$w" "${#w}" "$kind" "${w%a}|${w#?}|${w%%l*}"
done
# pipelines of builtins, read, here-documents
n=0
while read -r a b; do n=$((n + a * b)); done <<END
3 4
5 6
7 8
END
echo "n=$n"
printf 'x y z\n1 2 3\n' | while read -r p q r; do echo "$r$q$p"; done
set -- one two three; echo "args=$# last=$3 all=$*"
v=$( (echo sub; exit 4) ); echo "subshell=$v status=$?"
test -n "$v" && echo nonempty || echo empty
exit 7
"#;

const SH_EXPECTED: &str = "sum=607 prod=171453 hex=25f71d shift=8589934592 neg=-3,-2
fib12=144
alpha     5 vowel alph|lpha|a
beta      4 consonant bet|eta|beta
gamma     5 consonant gamm|amma|gamma
delta     5 consonant delt|elta|de
epsilon   7 vowel epsilon|psilon|epsi
n=98
zyx
321
args=3 last=three all=one two three
subshell=sub status=4
nonempty
";

#[test]
fn busybox_sh_script_with_loops_arithmetic_and_subshells() {
    Case::new("busybox-sh", "busybox", &["sh", "script.sh"])
        .file("script.sh", SH_SCRIPT)
        .verify(status_is(7))
        .verify(stdout_is(SH_EXPECTED.into()))
        .check();
}

#[test]
fn busybox_echo_and_exit_status_pass_through() {
    Case::new(
        "busybox-echo",
        "busybox",
        &["echo", "hello", "from", "arm64"],
    )
    .verify(status_is(0))
    .verify(stdout_is(b"hello from arm64\n".to_vec()))
    .check();
    Case::new("busybox-false", "busybox", &["false"])
        .verify(status_is(1))
        .check();
}

/// Lines of `word number`, for sort, sed and awk.
fn table() -> String {
    let words = sample_text(6000, 7);
    let words = String::from_utf8(words).expect("ascii");
    let mut out = String::new();
    for (k, w) in words.split_whitespace().enumerate().take(400) {
        out.push_str(&format!("{w} {}\n", (k * 7919 + 13) % 1000));
    }
    out
}

#[test]
fn busybox_sort() {
    let data = table();
    // Known good: the same ordering computed here (numeric on field 2, then field 1
    // descending, then whole line as the last resort, as sort does).
    let mut rows: Vec<(&str, u32, &str)> = data
        .lines()
        .map(|l| {
            let (w, n) = l.split_once(' ').expect("two fields");
            (w, n.parse().expect("number"), l)
        })
        .collect();
    rows.sort_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)).then(a.2.cmp(b.2)));
    let want: String = rows.iter().map(|r| format!("{}\n", r.2)).collect();
    Case::new(
        "busybox-sort",
        "busybox",
        &["sort", "-k2,2n", "-k1,1r", "table.txt"],
    )
    .file("table.txt", data.clone())
    .verify(status_is(0))
    .verify(stdout_is(want.into_bytes()))
    .check();
    Case::new("busybox-sort-unique", "busybox", &["sort", "-u"])
        .stdin(data.clone())
        .verify(status_is(0))
        .check();
}

#[test]
fn busybox_sed() {
    let data = table();
    let want: String = data
        .lines()
        .filter_map(|l| {
            let (w, n) = l.split_once(' ')?;
            let out = format!("{n}={w}");
            (!out.starts_with('1')).then(|| format!("{}\n", out.replace("e", "E")))
        })
        .collect();
    Case::new(
        "busybox-sed",
        "busybox",
        &[
            "sed",
            "-e",
            r"s/\([a-z0-9]*\) \([0-9]*\)/\2=\1/",
            "-e",
            "/^1/d",
            "-e",
            "s/e/E/g",
            "table.txt",
        ],
    )
    .file("table.txt", data)
    .verify(status_is(0))
    .verify(stdout_is(want.into_bytes()))
    .check();
}

#[test]
fn busybox_awk() {
    let data = table();
    let nums: Vec<u64> = data
        .lines()
        .map(|l| l.split(' ').nth(1).unwrap().parse().unwrap())
        .collect();
    let total: u64 = nums.iter().sum();
    let max = nums.iter().max().unwrap();
    let want = format!(
        "{} {} {} {:.3}\n",
        nums.len(),
        total,
        max,
        total as f64 / nums.len() as f64
    );
    Case::new(
        "busybox-awk-stats",
        "busybox",
        &[
            "awk",
            r#"{ n++; t += $2; if ($2 > m) m = $2 } END { printf "%d %d %d %.3f\n", n, t, m, t / n }"#,
            "table.txt",
        ],
    )
    .file("table.txt", data.clone())
    .verify(status_is(0))
    .verify(stdout_is(want.into_bytes()))
    .check();
    // Associative arrays, string functions, division: compared with QEMU. (Debian's
    // static busybox awk has no math library: no sqrt.)
    Case::new(
        "busybox-awk-arrays",
        "busybox",
        &[
            "awk",
            r#"{ c[$1]++; s[$1] += $2 } END { for (k in c) printf "%s %d %.4f %s %d\n", toupper(k), c[k], s[k] / c[k] / 7, substr(k, 2, 3), index(k, "e") }"#,
            "table.txt",
        ],
    )
    .file("table.txt", data)
    .verify(status_is(0))
    .check();
}

#[test]
fn busybox_sha256sum() {
    let data = sample_bytes(100_000, 3);
    let host_line = String::from_utf8(host("sha256sum", &[], &data)).expect("hex");
    let digest = host_line
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_string();
    Case::new("busybox-sha256sum", "busybox", &["sha256sum", "data.bin"])
        .file("data.bin", data)
        .verify(status_is(0))
        .verify(stdout_is(format!("{digest}  data.bin\n").into_bytes()))
        .check();
}

#[test]
fn busybox_gzip_round_trip() {
    let text = sample_text(200_000, 11);
    let expect = text.clone();
    // Compress on the guest; the host's gzip must read it back.
    Case::new("busybox-gzip", "busybox", &["gzip", "-9", "-c"])
        .stdin(text.clone())
        .verify(status_is(0))
        .verify(host_decodes_to("gzip", expect))
        .check();
    // Decompress what the host compressed.
    let gz = host("gzip", &["-6", "-c"], &text);
    Case::new("busybox-gunzip", "busybox", &["gunzip", "-c", "in.gz"])
        .file("in.gz", gz)
        .verify(status_is(0))
        .verify(stdout_is(text))
        .check();
}

#[test]
fn busybox_tar_round_trip() {
    let a = sample_text(30_000, 5);
    let b = sample_bytes(20_000, 6);
    // The guest creates an archive; the host's tar must list and extract it.
    let (a2, b2) = (a.clone(), b.clone());
    Case::new(
        "busybox-tar-create",
        "busybox",
        &["tar", "-cf", "out.tar", "a.txt", "b.bin"],
    )
    .file("a.txt", a.clone())
    .file("b.bin", b.clone())
    .verify(status_is(0))
    .verify(move |dir, _| {
        let x = dir.join("x");
        std::fs::create_dir_all(&x).map_err(|e| e.to_string())?;
        let tar = dir.join("out.tar");
        host(
            "tar",
            &["-xf", tar.to_str().unwrap(), "-C", x.to_str().unwrap()],
            b"",
        );
        same(
            "a.txt from the guest's tar",
            &std::fs::read(x.join("a.txt")).map_err(|e| e.to_string())?,
            &a2,
        )?;
        same(
            "b.bin from the guest's tar",
            &std::fs::read(x.join("b.bin")).map_err(|e| e.to_string())?,
            &b2,
        )
    })
    .check();
    // The guest extracts an archive the host made, and lists it.
    let dir = common::workdir("tar-host");
    std::fs::create_dir_all(dir.join("d/sub")).unwrap();
    std::fs::write(dir.join("d/a.txt"), &a).unwrap();
    std::fs::write(dir.join("d/sub/b.bin"), &b).unwrap();
    let archive = dir.join("in.tar");
    host(
        "tar",
        &[
            "--format=ustar",
            "--no-recursion",
            "-C",
            dir.to_str().unwrap(),
            "-cf",
            archive.to_str().unwrap(),
            "d",
            "d/a.txt",
            "d/sub",
            "d/sub/b.bin",
        ],
        b"",
    );
    let tarball = std::fs::read(&archive).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    Case::new("busybox-tar-extract", "busybox", &["tar", "-xf", "in.tar"])
        .file("in.tar", tarball.clone())
        .output("d/a.txt")
        .output("d/sub/b.bin")
        .verify(status_is(0))
        .verify(move |dir, _| {
            same(
                "d/a.txt",
                &std::fs::read(dir.join("d/a.txt")).map_err(|e| e.to_string())?,
                &a,
            )?;
            same(
                "d/sub/b.bin",
                &std::fs::read(dir.join("d/sub/b.bin")).map_err(|e| e.to_string())?,
                &b,
            )
        })
        .check();
    Case::new("busybox-tar-list", "busybox", &["tar", "-tf", "in.tar"])
        .file("in.tar", tarball)
        .verify(status_is(0))
        .verify(stdout_is(b"d/\nd/a.txt\nd/sub/\nd/sub/b.bin\n".to_vec()))
        .check();
}

// ---------------------------------------------------------------------------------------
// python3.11 (dynamically linked, with its standard library)

const PY_SCRIPT: &str = r#"import json, re, threading, math, hashlib, struct, sys

# integers: arbitrary precision, division, bit operations
f = math.factorial(60)
print("fact60", f, f.bit_length(), f % 1000003, hex(2**100 + 12345))
print("divmod", divmod(-7, 3), -7 // 3, pow(3, 200, 10**9 + 7), (1 << 70) >> 3)
# floats: arithmetic, formatting, math functions
xs = [i * 0.1 for i in range(1, 30)]
print("floats", sum(xs), repr(1 / 3), f"{math.pi:.12f}", math.sqrt(2), math.exp(1.5), math.log(10))
print("float fmt", f"{1e300 * 1e10}", float("nan") != float("nan"), round(2.675, 2), 7.0 / 2, int(3.99), float.hex(0.1))
print("struct", struct.pack("<dI", 1.5, 7).hex(), struct.unpack(">q", b"\xff" * 8))
# strings
s = "The quick brown fox jumps over the lazy dog"
print("str", s.upper(), s.split()[::-1], s.count("o"), s.replace("o", "0").title(), "é".encode("utf-8"), len("naïve"))
# dicts
d = {}
for w in s.lower().split():
    for ch in w:
        d[ch] = d.get(ch, 0) + 1
print("dict", sorted(d.items(), key=lambda kv: (-kv[1], kv[0]))[:8], len(d))
# re
print("re", re.findall(r"\b(\w)(\w*)\b", s)[:4], re.sub(r"(\w+) (\w+)", r"\2 \1", s), bool(re.match(r"^T.*g$", s)))
m = re.search(r"(?P<animal>f\w+).*(?P<other>d\w+)", s)
print("re groups", m.group("animal"), m.group("other"), m.span())
# json
doc = {"name": "armboard", "n": [1, 2.5, None, True], "nested": {"k": "v" * 3}}
text = json.dumps(doc, sort_keys=True)
print("json", text, json.loads(text) == doc, json.dumps([1e-7, 12345678901234567890]))
# hashlib
print("sha256", hashlib.sha256(s.encode()).hexdigest(), hashlib.md5(b"abc").hexdigest())
# threads
lock = threading.Lock()
results = []
def work(k):
    acc = 0
    for i in range(2000):
        acc = (acc * 31 + i * k) % 1000000007
    with lock:
        results.append((k, acc))
ts = [threading.Thread(target=work, args=(k,)) for k in range(1, 5)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print("threads", sorted(results))
# exceptions and generators
def gen(n):
    for i in range(n):
        if i == 5:
            return
        yield i * i
try:
    {}["missing"]
except KeyError as e:
    print("except", repr(e), list(gen(10)))
sys.exit(3)
"#;

/// Lines of the script's output that are known independently of any emulator (checked
/// with CPython on x86-64, and by hand where the values are classic).
const PY_KNOWN: &[&str] = &[
    "fact60 8320987112741390144276341183223364380754172606361245952449277696409600000000000000 273 874045 0x10000000000000000000003039",
    "divmod (-3, 2) -3 136318165 147573952589676412928",
    "floats 43.5 0.3333333333333333 3.141592653590 1.4142135623730951 4.4816890703380645 2.302585092994046",
    "float fmt inf True 2.67 3.5 3 0x1.999999999999ap-4",
    "struct 000000000000f83f07000000 (-1,)",
    "json {\"n\": [1, 2.5, null, true], \"name\": \"armboard\", \"nested\": {\"k\": \"vvv\"}} True [1e-07, 12345678901234567890]",
    "sha256 d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592 900150983cd24fb0d6963f7d28e17f72",
    "threads [(1, 624844602), (2, 249689197), (3, 874533799), (4, 499378394)]",
    "except KeyError('missing') [0, 1, 4, 9, 16]",
];

#[test]
fn python3_script_with_ints_floats_strings_dicts_re_json_threads() {
    Case::new("python3", "python3.11", &["-I", "script.py"])
        .file("script.py", PY_SCRIPT)
        .verify(status_is(3))
        .verify(|_, o| {
            let out = o.stdout_text();
            for k in PY_KNOWN {
                if !out.lines().any(|l| l == *k) {
                    return Err(format!("missing output line {k:?}"));
                }
            }
            Ok(())
        })
        .check();
}

// ---------------------------------------------------------------------------------------
// xz (liblzma)

#[test]
fn xz_9_compress_and_decompress() {
    let text = sample_text(300_000, 21);
    let expect = text.clone();
    Case::new("xz-9", "xz", &["-9", "-c"])
        .stdin(text.clone())
        .verify(status_is(0))
        .verify(host_decodes_to("xz", expect))
        .check();
    let packed = host("xz", &["-9", "-c"], &text);
    Case::new("xz-d", "xz", &["-d", "-c", "in.xz"])
        .file("in.xz", packed)
        .verify(status_is(0))
        .verify(stdout_is(text))
        .check();
}

#[test]
fn xz_two_threads() {
    // Small blocks, so that both threads really get work.
    let text = sample_text(400_000, 22);
    let expect = text.clone();
    Case::new("xz-T2", "xz", &["-T2", "-6", "--block-size=65536", "-c"])
        .stdin(text)
        .verify(status_is(0))
        .verify(host_decodes_to("xz", expect))
        .verify(|dir, o| {
            let f = dir.join("guest-output.xz");
            std::fs::write(&f, &o.stdout).map_err(|e| e.to_string())?;
            let list = host("xz", &["--robot", "-l", f.to_str().unwrap()], b"");
            let list = String::from_utf8_lossy(&list).into_owned();
            let blocks = list
                .lines()
                .find(|l| l.starts_with("totals"))
                .and_then(|l| l.split('\t').nth(2).map(str::to_string))
                .unwrap_or_default();
            if blocks.parse::<u32>().unwrap_or(0) >= 6 {
                Ok(())
            } else {
                Err(format!("expected at least 6 blocks, xz -l says {blocks:?}"))
            }
        })
        .check();
}

// ---------------------------------------------------------------------------------------
// openssl (libcrypto)

#[test]
fn openssl_sha256() {
    let data = sample_bytes(300_000, 31);
    let host_line = String::from_utf8(host("sha256sum", &[], &data)).expect("hex");
    let digest = host_line
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_string();
    Case::new(
        "openssl-sha256",
        "openssl",
        &["dgst", "-sha256", "data.bin"],
    )
    .file("data.bin", data)
    .verify(status_is(0))
    .verify(stdout_is(
        format!("SHA2-256(data.bin)= {digest}\n").into_bytes(),
    ))
    .check();
}

const AES_KEY: &str = "000102030405060708090a0b0c0d0e0f";
const AES_IV: &str = "f0e0d0c0b0a090807060504030201000";

#[test]
fn openssl_aes_128_cbc_known_answer() {
    // FIPS-197 appendix C.1: AES-128 of 00112233..ff under key 00010203..0f. One block
    // of CBC with a zero IV is the bare cipher.
    let block: Vec<u8> = (0..16u8).map(|i| i * 0x11).collect();
    Case::new(
        "openssl-aes-kat",
        "openssl",
        &[
            "enc",
            "-aes-128-cbc",
            "-nopad",
            "-K",
            AES_KEY,
            "-iv",
            "00000000000000000000000000000000",
            "-in",
            "block.bin",
            "-out",
            "c.bin",
        ],
    )
    .file("block.bin", block)
    .output("c.bin")
    .verify(status_is(0))
    .verify(|dir, _| {
        let c = std::fs::read(dir.join("c.bin")).map_err(|e| e.to_string())?;
        let want = [
            0x69, 0xc4, 0xe0, 0xd8, 0x6a, 0x7b, 0x04, 0x30, 0xd8, 0xcd, 0xb7, 0x80, 0x70, 0xb4,
            0xc5, 0x5a,
        ];
        same("AES-128(FIPS-197 C.1)", &c, &want)
    })
    .check();
}

#[test]
fn openssl_aes_128_cbc_round_trip() {
    let plain = sample_text(100_003, 32);
    let p2 = plain.clone();
    Case::new(
        "openssl-aes-encrypt",
        "openssl",
        &[
            "enc",
            "-aes-128-cbc",
            "-K",
            AES_KEY,
            "-iv",
            AES_IV,
            "-in",
            "plain.txt",
            "-out",
            "c.bin",
        ],
    )
    .file("plain.txt", plain.clone())
    .output("c.bin")
    .verify(status_is(0))
    .verify(move |dir, _| {
        let c = dir.join("c.bin");
        let back = host(
            "openssl",
            &[
                "enc",
                "-d",
                "-aes-128-cbc",
                "-K",
                AES_KEY,
                "-iv",
                AES_IV,
                "-in",
                c.to_str().unwrap(),
            ],
            b"",
        );
        same("host decryption of the guest's ciphertext", &back, &p2)
    })
    .check();
    let cipher = host(
        "openssl",
        &["enc", "-aes-128-cbc", "-K", AES_KEY, "-iv", AES_IV],
        &plain,
    );
    let p3 = plain.clone();
    Case::new(
        "openssl-aes-decrypt",
        "openssl",
        &[
            "enc",
            "-d",
            "-aes-128-cbc",
            "-K",
            AES_KEY,
            "-iv",
            AES_IV,
            "-in",
            "c.bin",
            "-out",
            "p.txt",
        ],
    )
    .file("c.bin", cipher)
    .output("p.txt")
    .verify(status_is(0))
    .verify(move |dir, _| {
        same(
            "p.txt",
            &std::fs::read(dir.join("p.txt")).map_err(|e| e.to_string())?,
            &p3,
        )
    })
    .check();
}

// ---------------------------------------------------------------------------------------
// 7-Zip's benchmark: LZMA compression and decompression, checked by 7-Zip itself (CRC of
// every decompressed buffer). Small dictionary and a fixed, small amount of work.

#[test]
fn sevenzip_benchmark_checks_itself() {
    Case::new("7zz-b", "7zz", &["b", "1", "-mmt1", "-md18", "-mtic=24"])
        .ignore_stdout()
        .time_limit(300)
        .verify(status_is(0))
        .verify(|_, o| {
            let out = o.stdout_text();
            if !out.lines().any(|l| l.starts_with("Tot:")) {
                return Err("no `Tot:` line: the benchmark did not finish".into());
            }
            if out.to_ascii_lowercase().contains("error") {
                return Err("the benchmark reports an error".into());
            }
            Ok(())
        })
        .check();
}
