/* Every error path of the C API: NULL pointers, invalid UTF-8, bad files,
 * unknown strategies, out-of-range parameters, short buffers, misbehaving
 * drafters. Each must come back as its status with a message, never a crash.
 *
 * usage: errors MODEL.gguf NOT_GGUF_FILE OTHER_VOCAB.gguf MISSING_PATH
 */
#include <math.h>
#include <stdint.h>

#include "check.h"

static const char BAD_UTF8[] = {(char)0xff, (char)0xfe, 'x', 0};

static void version_and_names(void) {
    const char *v = augur_version();
    CHECK(v != NULL && strlen(v) >= 5 && strchr(v, '.') != NULL);
    CHECK(strcmp(augur_status_name(AUGUR_OK), "AUGUR_OK") == 0);
    CHECK(strcmp(augur_status_name(AUGUR_DRAFTER), "AUGUR_DRAFTER") == 0);
    CHECK(strcmp(augur_status_name(-3), "AUGUR_UNKNOWN_STATUS") == 0);
    CHECK(AUGUR_OK == 0 && AUGUR_BUFFER_TOO_SMALL == 8 && AUGUR_PANIC == 10);
}

static void loading(const char *not_gguf, const char *other_vocab, const char *missing) {
    augur_model *m = (augur_model *)&m; /* any non-NULL value: must be reset */
    CHECK_STATUS(augur_model_load(NULL, NULL, &m), AUGUR_NULL_POINTER);
    CHECK_MESSAGE("path must not be NULL");
    CHECK(m == NULL);
    CHECK_STATUS(augur_model_load(missing, NULL, NULL), AUGUR_NULL_POINTER);
    CHECK_MESSAGE("out");

    m = (augur_model *)&m;
    CHECK_STATUS(augur_model_load(missing, NULL, &m), AUGUR_MODEL_LOAD);
    CHECK_MESSAGE(missing);
    CHECK(m == NULL);

    CHECK_STATUS(augur_model_load(not_gguf, NULL, &m), AUGUR_MODEL_LOAD);
    CHECK_MESSAGE("not a GGUF file");
    CHECK(m == NULL);

    /* A valid header with no weights: refused before or by llama.cpp. */
    augur_model_params mp = augur_model_params_default();
    CHECK(mp.n_gpu_layers == 0);
    CHECK_STATUS(augur_model_load(other_vocab, &mp, &m), AUGUR_MODEL_LOAD);
    CHECK(m == NULL);

    CHECK_STATUS(augur_model_load(BAD_UTF8, NULL, &m), AUGUR_INVALID_UTF8);
    CHECK_MESSAGE("UTF-8");

    augur_model_free(NULL);
    CHECK(augur_model_n_vocab(NULL) == 0);
    CHECK(augur_model_n_ctx_train(NULL) == 0);
}

static void draft_compatibility(const char *model_path, const char *other_vocab,
                                const char *missing) {
    CHECK_STATUS(augur_check_draft_compatible(model_path, model_path), AUGUR_OK);
    CHECK_STATUS(augur_check_draft_compatible(model_path, other_vocab), AUGUR_VOCAB_MISMATCH);
    CHECK_MESSAGE("vocabulary");
    CHECK_STATUS(augur_check_draft_compatible(model_path, missing), AUGUR_MODEL_LOAD);
    CHECK_STATUS(augur_check_draft_compatible(NULL, model_path), AUGUR_NULL_POINTER);
    CHECK_STATUS(augur_check_draft_compatible(model_path, NULL), AUGUR_NULL_POINTER);
}

static void last_error_buffer(void) {
    /* Make a known error, then read it through short buffers. */
    CHECK_STATUS(augur_model_load(NULL, NULL, NULL), AUGUR_NULL_POINTER);
    size_t full = augur_last_error_length();
    CHECK(full == strlen("out must not be NULL"));

    char small[5];
    memset(small, 'Z', sizeof small);
    size_t written = 99;
    CHECK_STATUS(augur_last_error_message(small, sizeof small, &written), AUGUR_BUFFER_TOO_SMALL);
    CHECK(written == 4);
    CHECK(small[4] == '\0' && strcmp(small, "out ") == 0);

    char one[1] = {'Z'};
    CHECK_STATUS(augur_last_error_message(one, 1, &written), AUGUR_BUFFER_TOO_SMALL);
    CHECK(written == 0 && one[0] == '\0');
    CHECK_STATUS(augur_last_error_message(NULL, 0, &written), AUGUR_BUFFER_TOO_SMALL);

    /* Reading the message leaves it in place. */
    char big[64];
    CHECK_STATUS(augur_last_error_message(big, sizeof big, &written), AUGUR_OK);
    CHECK(written == full && strcmp(big, "out must not be NULL") == 0);

}

static void tokenization(const augur_model *m) {
    size_t n = 12345;
    int32_t toks[256];
    CHECK_STATUS(augur_tokenize(NULL, "hi", false, toks, 256, &n), AUGUR_NULL_POINTER);
    CHECK(n == 0);
    CHECK_STATUS(augur_tokenize(m, NULL, false, toks, 256, &n), AUGUR_NULL_POINTER);
    CHECK_STATUS(augur_tokenize(m, BAD_UTF8, false, toks, 256, &n), AUGUR_INVALID_UTF8);

    const char *text = "Hello world, hello augur";
    /* Size query, then a short buffer that must stay untouched. */
    CHECK_STATUS(augur_tokenize(m, text, false, NULL, 0, &n), AUGUR_BUFFER_TOO_SMALL);
    size_t needed = n;
    CHECK(needed >= 3);
    toks[0] = -7;
    CHECK_STATUS(augur_tokenize(m, text, false, toks, 1, &n), AUGUR_BUFFER_TOO_SMALL);
    CHECK(n == needed && toks[0] == -7);
    CHECK_MESSAGE("buffer holds 1 tokens");
    /* cap > 0 with a NULL buffer is refused, not written through. */
    CHECK_STATUS(augur_tokenize(m, text, false, NULL, 256, &n), AUGUR_NULL_POINTER);
    CHECK(augur_last_error_length() > 0);
    CHECK_STATUS(augur_tokenize(m, text, false, toks, needed, &n), AUGUR_OK);
    CHECK(n == needed);
    /* A successful call clears the message. */
    CHECK(augur_last_error_length() == 0);
    char none[8];
    CHECK_STATUS(augur_last_error_message(none, sizeof none, NULL), AUGUR_OK);
    CHECK(none[0] == '\0');

    /* Round trip through detokenize. */
    char buf[256];
    size_t len = 0;
    CHECK_STATUS(augur_detokenize(m, toks, n, buf, sizeof buf, &len), AUGUR_OK);
    CHECK(len == strlen(text) && strcmp(buf, text) == 0);
    CHECK_STATUS(augur_detokenize(m, toks, n, buf, len, &len), AUGUR_BUFFER_TOO_SMALL);
    CHECK(len == strlen(text));
    CHECK_STATUS(augur_detokenize(m, NULL, 3, buf, sizeof buf, &len), AUGUR_NULL_POINTER);
    CHECK_STATUS(augur_detokenize(m, NULL, 0, buf, sizeof buf, &len), AUGUR_OK);
    CHECK(len == 0 && buf[0] == '\0');
    int32_t bad[2] = {toks[0], -1};
    CHECK_STATUS(augur_detokenize(m, bad, 2, buf, sizeof buf, &len), AUGUR_INVALID_ARGUMENT);
    CHECK_MESSAGE("outside the vocabulary");

    /* Pieces: size query, exact-without-NUL (too small), enough. */
    size_t plen = 0;
    CHECK_STATUS(augur_token_to_piece(m, toks[0], NULL, 0, &plen), AUGUR_BUFFER_TOO_SMALL);
    CHECK(plen > 0);
    char piece[64];
    memset(piece, 'Z', sizeof piece);
    CHECK_STATUS(augur_token_to_piece(m, toks[0], piece, plen, &plen), AUGUR_BUFFER_TOO_SMALL);
    CHECK(piece[0] == 'Z');
    CHECK_STATUS(augur_token_to_piece(m, toks[0], piece, plen + 1, &plen), AUGUR_OK);
    CHECK(piece[plen] == '\0' && strncmp(piece, "Hello", plen) == 0);
    int32_t n_vocab = (int32_t)augur_model_n_vocab(m);
    CHECK(n_vocab > 1000);
    CHECK_STATUS(augur_token_to_piece(m, n_vocab, piece, sizeof piece, &plen), AUGUR_INVALID_ARGUMENT);
    CHECK_STATUS(augur_token_to_piece(m, -1, piece, sizeof piece, &plen), AUGUR_INVALID_ARGUMENT);
    CHECK_STATUS(augur_token_to_piece(NULL, 0, piece, sizeof piece, &plen), AUGUR_NULL_POINTER);
}

/* Expects session creation with `p` to fail with `want`; the message must
 * contain `needle`. */
static void refused(const augur_model *m, const augur_session_params *p, augur_status want,
                    const char *needle, int line) {
    augur_session *s = (augur_session *)&s;
    augur_status got = augur_session_new(m, NULL, p, &s);
    g_checks++;
    if (got != want || s != NULL || strstr(last_error(), needle) == NULL) {
        g_failures++;
        fprintf(stderr, "FAIL line %d: session_new returned %s (%s), expected %s with \"%s\"\n",
                line, augur_status_name((int32_t)got), last_error(),
                augur_status_name((int32_t)want), needle);
    }
    augur_session_free(s == (augur_session *)&s ? NULL : s);
}

#define REFUSED(field, value, want, needle)                                      \
    do {                                                                         \
        augur_session_params p_ = augur_session_params_default();                \
        p_.field = value;                                                        \
        refused(m, &p_, want, needle, __LINE__);                                 \
    } while (0)

static void session_parameters(const augur_model *m) {
    augur_session *s = NULL;
    CHECK_STATUS(augur_session_new(NULL, NULL, NULL, &s), AUGUR_NULL_POINTER);
    CHECK_MESSAGE("target");
    CHECK_STATUS(augur_session_new(m, NULL, NULL, NULL), AUGUR_NULL_POINTER);

    augur_session_params d = augur_session_params_default();
    CHECK(d.strategy == NULL && d.temperature == 0.0f && d.n_ctx == 0 && d.top_k == 40);
    CHECK(d.exact_mode == AUGUR_EXACT_AUTO);

    REFUSED(strategy, "warp-drive", AUGUR_UNKNOWN_STRATEGY, "unknown strategy 'warp-drive'");
    REFUSED(strategy, BAD_UTF8, AUGUR_INVALID_UTF8, "strategy");
    REFUSED(strategy, "speculative", AUGUR_INVALID_ARGUMENT, "needs a draft model");
    REFUSED(exact_mode, 7, AUGUR_INVALID_ARGUMENT, "exact_mode");
    REFUSED(draft_max, -1, AUGUR_INVALID_ARGUMENT, "draft_max");
    REFUSED(draft_max, 100000, AUGUR_INVALID_ARGUMENT, "draft_max");
    REFUSED(draft_min, -3, AUGUR_INVALID_ARGUMENT, "draft_min");
    REFUSED(draft_p_min, 1.5, AUGUR_INVALID_ARGUMENT, "draft_p_min");
    REFUSED(draft_p_min, NAN, AUGUR_INVALID_ARGUMENT, "draft_p_min");
    REFUSED(temperature, -1.0f, AUGUR_INVALID_ARGUMENT, "temperature");
    REFUSED(temperature, NAN, AUGUR_INVALID_ARGUMENT, "temperature");
    REFUSED(temperature, INFINITY, AUGUR_INVALID_ARGUMENT, "temperature");
    REFUSED(top_k, -1, AUGUR_INVALID_ARGUMENT, "top_k");
    REFUSED(top_p, 0.0f, AUGUR_INVALID_ARGUMENT, "top-p");
    REFUSED(top_p, 1.5f, AUGUR_INVALID_ARGUMENT, "top-p");
    REFUSED(min_p, 2.0f, AUGUR_INVALID_ARGUMENT, "min-p");
    REFUSED(threads, -2, AUGUR_INVALID_ARGUMENT, "threads");
    REFUSED(threads, 5000, AUGUR_INVALID_ARGUMENT, "threads");
    /* The shared limit: at most 4 per core and 512 (ggml's pool); libgomp
       ended the host process at 1024. */
    REFUSED(threads, 1024, AUGUR_INVALID_ARGUMENT, "never more than 512");
    REFUSED(threads, 100000, AUGUR_INVALID_ARGUMENT, "threads must be at most");
    REFUSED(draft_threads, 1025, AUGUR_INVALID_ARGUMENT, "draft_threads must be at most");
    REFUSED(draft_threads, -1, AUGUR_INVALID_ARGUMENT, "draft_threads");
    REFUSED(n_ctx, 4, AUGUR_INVALID_ARGUMENT, "n_ctx");
    REFUSED(n_ctx, -1, AUGUR_INVALID_ARGUMENT, "n_ctx");
    REFUSED(n_ctx, 1 << 30, AUGUR_INVALID_ARGUMENT, "training context");
    {
        augur_session_params p = augur_session_params_default();
        p.strategy = "lookahead";
        p.la_ngram = 2;
        refused(m, &p, AUGUR_INVALID_ARGUMENT, "n-gram length", __LINE__);
        p.la_ngram = -4;
        refused(m, &p, AUGUR_INVALID_ARGUMENT, "la_ngram", __LINE__);
        p.la_ngram = 0;
        p.la_window = 5000;
        refused(m, &p, AUGUR_INVALID_ARGUMENT, "at most", __LINE__);
    }
    {
        augur_session_params p = augur_session_params_default();
        p.strategy = "prompt-lookup";
        p.ngram_max = 50;
        refused(m, &p, AUGUR_INVALID_ARGUMENT, "longest n-gram", __LINE__);
        p.ngram_max = 2;
        p.ngram_min = 3;
        refused(m, &p, AUGUR_INVALID_ARGUMENT, "longest n-gram", __LINE__);
    }
    {
        /* Names are case-insensitive. */
        augur_session_params p = augur_session_params_default();
        p.strategy = "BaseLine";
        p.n_ctx = 64;
        CHECK_STATUS(augur_session_new(m, NULL, &p, &s), AUGUR_OK);
        CHECK(s != NULL && strcmp(augur_session_strategy(s), "baseline") == 0);
        augur_session_free(s);
    }
    CHECK(augur_session_strategy(NULL) == NULL);
    augur_session_free(NULL);
}

static bool count_pieces(void *user_data, const char *bytes, size_t len) {
    (void)bytes;
    (void)len;
    (*(int *)user_data)++;
    return true;
}

static void generation(const augur_model *m) {
    augur_session_params p = augur_session_params_default();
    p.n_ctx = 64;
    augur_session *s = NULL;
    CHECK_STATUS(augur_session_new(m, NULL, &p, &s), AUGUR_OK);

    augur_stats st;
    memset(&st, 0x5a, sizeof st);
    CHECK_STATUS(augur_generate(NULL, "hi", 4, false, NULL, NULL, &st), AUGUR_NULL_POINTER);
    CHECK_MESSAGE("session");
    CHECK(st.n_generated == 0 && st.target_passes == 0 && st.acceptance_rate == 0.0);
    CHECK_STATUS(augur_generate(s, NULL, 4, false, NULL, NULL, &st), AUGUR_NULL_POINTER);
    CHECK_STATUS(augur_generate(s, BAD_UTF8, 4, false, NULL, NULL, &st), AUGUR_INVALID_UTF8);
    CHECK_STATUS(augur_generate(s, "hi", 0, false, NULL, NULL, &st), AUGUR_INVALID_ARGUMENT);
    CHECK_MESSAGE("max_tokens");
    CHECK_STATUS(augur_generate(s, "hi", -5, false, NULL, NULL, NULL), AUGUR_INVALID_ARGUMENT);

    /* A prompt longer than the context (llama.cpp may round 64 up to 256). */
    static char long_prompt[8192] = "";
    for (int i = 0; i < 1000; i++) strcat(long_prompt, "apple ");
    CHECK_STATUS(augur_generate(s, long_prompt, 4, false, NULL, NULL, &st), AUGUR_CONTEXT_OVERFLOW);
    CHECK_MESSAGE("context");

    int32_t toks[3] = {1, 2, 3};
    CHECK_STATUS(augur_generate_tokens(s, NULL, 3, 4, NULL, NULL, &st), AUGUR_NULL_POINTER);
    CHECK_STATUS(augur_generate_tokens(s, toks, 0, 4, NULL, NULL, &st), AUGUR_INVALID_ARGUMENT);
    CHECK_MESSAGE("empty");
    toks[1] = (int32_t)augur_model_n_vocab(m);
    CHECK_STATUS(augur_generate_tokens(s, toks, 3, 4, NULL, NULL, &st), AUGUR_INVALID_ARGUMENT);
    CHECK_MESSAGE("outside the vocabulary");
    toks[1] = -1;
    CHECK_STATUS(augur_generate_tokens(s, toks, 3, 4, NULL, NULL, &st), AUGUR_INVALID_ARGUMENT);

    /* The session still works after all that. */
    int pieces = 0;
    CHECK_STATUS(augur_generate(s, "The capital of France is", 3, false, count_pieces, &pieces, &st),
                 AUGUR_OK);
    CHECK(st.n_generated >= 1 && st.n_generated <= 3 && pieces >= 1);
    size_t n = 0;
    int32_t out[8];
    CHECK_STATUS(augur_session_last_tokens(s, out, 0, &n), AUGUR_BUFFER_TOO_SMALL);
    CHECK(n == st.n_generated);
    CHECK_STATUS(augur_session_last_tokens(s, out, 8, &n), AUGUR_OK);
    CHECK_STATUS(augur_session_last_tokens(NULL, out, 8, &n), AUGUR_NULL_POINTER);
    CHECK(n == 0);
    /* A failed generation leaves no tokens behind. */
    CHECK_STATUS(augur_generate(s, "hi", 0, false, NULL, NULL, NULL), AUGUR_INVALID_ARGUMENT);
    CHECK_STATUS(augur_session_last_tokens(s, out, 8, &n), AUGUR_OK);
    CHECK(n == 0);
    augur_session_free(s);
}

/* A drafter that misbehaves on purpose, then behaves. */
typedef struct {
    int mode; /* 0: propose nothing, 1: too many, 2: id past the vocabulary, 3: negative id */
    int32_t n_vocab;
    int calls;
    int resets;
} bad_drafter;

static size_t bad_propose(void *user_data, const int32_t *ctx, size_t n_ctx, int32_t *out,
                          size_t max_out) {
    bad_drafter *d = (bad_drafter *)user_data;
    d->calls++;
    if (n_ctx == 0 || ctx == NULL || max_out == 0) return 0;
    switch (d->mode) {
    case 1:
        for (size_t i = 0; i < max_out; i++) out[i] = ctx[n_ctx - 1];
        return max_out + 1;
    case 2:
        out[0] = d->n_vocab;
        return 1;
    case 3:
        out[0] = -2;
        return 1;
    default:
        return 0;
    }
}

static void reset_drafter(void *user_data) { ((bad_drafter *)user_data)->resets++; }

static void drafters(const augur_model *m) {
    augur_session *s = (augur_session *)&s;
    bad_drafter state = {0, (int32_t)augur_model_n_vocab(m), 0, 0};
    augur_drafter d = {bad_propose, reset_drafter, &state};

    CHECK_STATUS(augur_session_new_with_drafter(m, NULL, NULL, &s), AUGUR_NULL_POINTER);
    CHECK_MESSAGE("drafter");
    CHECK(s == NULL);
    augur_drafter no_propose = {NULL, NULL, NULL};
    CHECK_STATUS(augur_session_new_with_drafter(m, &no_propose, NULL, &s), AUGUR_NULL_POINTER);
    CHECK_MESSAGE("propose");
    CHECK_STATUS(augur_session_new_with_drafter(NULL, &d, NULL, &s), AUGUR_NULL_POINTER);

    augur_session_params p = augur_session_params_default();
    p.n_ctx = 128;
    p.draft_max = 3; /* ask for 3 drafts every step */
    p.exact_mode = AUGUR_EXACT_KERNEL; /* whatever calibration found, drafting happens */
    p.draft_max = 3;
    p.threads = 0;
    CHECK_STATUS(augur_session_new_with_drafter(m, &d, &p, &s), AUGUR_OK);
    CHECK(s != NULL && strcmp(augur_session_strategy(s), "c-drafter") == 0);

    const char *prompt = "One, two, three, four, five, six";
    augur_stats st;
    state.mode = 1;
    CHECK_STATUS(augur_generate(s, prompt, 6, false, NULL, NULL, &st), AUGUR_DRAFTER);
    CHECK_MESSAGE("at most 3");
    CHECK(state.calls >= 1 && state.resets == 1);
    state.mode = 2;
    CHECK_STATUS(augur_generate(s, prompt, 6, false, NULL, NULL, &st), AUGUR_DRAFTER);
    CHECK_MESSAGE("outside the vocabulary");
    state.mode = 3;
    CHECK_STATUS(augur_generate(s, prompt, 6, false, NULL, NULL, &st), AUGUR_DRAFTER);
    CHECK_MESSAGE("-2");
    CHECK(state.resets == 3);
    /* A drafter's error does not spoil the session. */
    state.mode = 0;
    int calls_before = state.calls;
    CHECK_STATUS(augur_generate(s, prompt, 6, false, NULL, NULL, &st), AUGUR_OK);
    CHECK(st.n_generated >= 1 && st.drafted == 0 && state.calls > calls_before);
    augur_session_free(s);
}

static void model_outlives_its_handle(const char *model_path) {
    augur_model *m = NULL;
    CHECK_STATUS(augur_model_load(model_path, NULL, &m), AUGUR_OK);
    augur_session_params p = augur_session_params_default();
    p.n_ctx = 64;
    augur_session *s = NULL;
    CHECK_STATUS(augur_session_new(m, NULL, &p, &s), AUGUR_OK);
    augur_model_free(m); /* the session keeps the weights alive */
    augur_stats st;
    CHECK_STATUS(augur_generate(s, "Once upon a time", 3, false, NULL, NULL, &st), AUGUR_OK);
    CHECK(st.n_generated >= 1);
    augur_session_free(s);
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s MODEL NOT_GGUF OTHER_VOCAB MISSING\n", argv[0]);
        return 2;
    }
    const char *model_path = argv[1];
    version_and_names();
    loading(argv[2], argv[3], argv[4]);
    draft_compatibility(model_path, argv[3], argv[4]);
    last_error_buffer();

    augur_model *m = NULL;
    CHECK_STATUS(augur_model_load(model_path, NULL, &m), AUGUR_OK);
    if (m == NULL) return finish("errors");
    tokenization(m);
    session_parameters(m);
    generation(m);
    drafters(m);
    augur_model_free(m);
    model_outlives_its_handle(model_path);
    return finish("errors");
}
