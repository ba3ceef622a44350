//! The committed include/augur.h is what cbindgen generates from the sources
//! now (regenerate with `cargo run --release -p augur-ffi --bin augur-gen-header`).

#[path = "../tools/header.rs"]
mod header;

#[test]
fn committed_header_is_up_to_date() {
    let fresh = header::generate(&header::crate_dir()).unwrap_or_else(|e| panic!("{e}"));
    let path = header::header_path();
    let committed =
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    if committed != fresh {
        let fresh = String::from_utf8_lossy(&fresh);
        let committed = String::from_utf8_lossy(&committed);
        let first = fresh
            .lines()
            .zip(committed.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| fresh.lines().count().min(committed.lines().count()));
        panic!(
            "{} is out of date (first difference at line {}): run \
             `cargo run --release -p augur-ffi --bin augur-gen-header` and commit it\n\
             generated: {:?}\ncommitted: {:?}",
            path.display(),
            first + 1,
            fresh.lines().nth(first),
            committed.lines().nth(first)
        );
    }
}

#[test]
fn header_declares_the_whole_api() {
    let text = String::from_utf8(header::generate(&header::crate_dir()).unwrap()).unwrap();
    for item in [
        "typedef struct augur_model augur_model;",
        "typedef struct augur_session augur_session;",
        "AUGUR_OK = 0,",
        "AUGUR_BUFFER_TOO_SMALL = 8,",
        "AUGUR_PANIC = 10,",
        "enum augur_status augur_model_load(const char *path,",
        "void augur_model_free(struct augur_model *model);",
        "enum augur_status augur_session_new(",
        "enum augur_status augur_session_new_with_drafter(",
        "void augur_session_free(struct augur_session *session);",
        "enum augur_status augur_generate(struct augur_session *session,",
        "enum augur_status augur_generate_tokens(",
        "enum augur_status augur_tokenize(",
        "enum augur_status augur_token_to_piece(",
        "enum augur_status augur_last_error_message(char *buf, size_t len, size_t *written);",
        "const char *augur_version(void);",
        "typedef bool (*augur_on_token)(void *user_data, const char *bytes, size_t len);",
        "struct augur_session_params augur_session_params_default(void);",
        "#define AUGUR_EXACT_BIT 1",
        "extern \"C\" {",
    ] {
        assert!(text.contains(item), "the header lacks {item:?}");
    }
}
