/* Hostile model files through augur_model_load, each in a child process
 * (fork): the child loads the file and, if that succeeds, generates two
 * tokens; it must end with a status, never by a signal. The parent then
 * refuses a FIFO, a device and a directory itself (a FIFO must not block:
 * an alarm fails the test if it does), and checks that a 64-token context
 * refuses a 200-token prompt.
 *
 * usage: hostile MODEL.gguf HOSTILE.gguf...
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

/* In the child: the status of augur_model_load, or 100 + the status of the
 * session or generation when the load succeeded. */
static int load_and_run(const char *path) {
    augur_model *m = NULL;
    augur_status st = augur_model_load(path, NULL, &m);
    if (st != AUGUR_OK) {
        return (int)st;
    }
    augur_session_params p = augur_session_params_default();
    p.n_ctx = 64;
    p.threads = 1;
    augur_session *s = NULL;
    st = augur_session_new(m, NULL, &p, &s);
    if (st == AUGUR_OK) {
        st = augur_generate(s, "Hello", 2, false, NULL, NULL, NULL);
    }
    augur_session_free(s);
    augur_model_free(m);
    return st == AUGUR_OK ? 0 : 100 + (int)st;
}

/* Runs load_and_run(path) in a child; returns its exit status, or -signal. */
static int in_child(const char *path) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        exit(load_and_run(path));
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        return -1000;
    }
    if (WIFSIGNALED(status)) {
        return -WTERMSIG(status);
    }
    return WEXITSTATUS(status);
}

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "FAIL: augur_model_load blocked on a FIFO\n";
    ssize_t n = write(2, msg, sizeof msg - 1);
    (void)n;
    _exit(3);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL HOSTILE...\n", argv[0]);
        return 2;
    }
    /* The real model loads and runs in a child too: the harness works. */
    CHECK(in_child(argv[1]) == 0);
    for (int i = 2; i < argc; i++) {
        int code = in_child(argv[i]);
        g_checks++;
        if (code != (int)AUGUR_MODEL_LOAD) {
            g_failures++;
            fprintf(stderr, "FAIL %s: the child ended with %s %d, expected status %s\n",
                    argv[i], code < 0 ? "signal" : "status", code < 0 ? -code : code,
                    augur_status_name((int32_t)AUGUR_MODEL_LOAD));
        }
    }

    /* Not regular files, in this process. */
    char fifo[] = "/tmp/augur-hostile-fifo-XXXXXX";
    int fd = mkstemp(fifo);
    CHECK(fd >= 0);
    close(fd);
    unlink(fifo);
    CHECK(mkfifo(fifo, 0600) == 0);
    signal(SIGALRM, on_alarm);
    alarm(20);
    augur_model *m = NULL;
    CHECK_STATUS(augur_model_load(fifo, NULL, &m), AUGUR_MODEL_LOAD);
    CHECK_MESSAGE("FIFO");
    CHECK_STATUS(augur_model_load("/dev/zero", NULL, &m), AUGUR_MODEL_LOAD);
    CHECK_MESSAGE("character device");
    CHECK_STATUS(augur_model_load("/tmp", NULL, &m), AUGUR_MODEL_LOAD);
    CHECK_MESSAGE("directory");
    CHECK(m == NULL);
    alarm(0);
    unlink(fifo);

    /* The context holds what was asked for: 64 tokens, not 256. */
    CHECK_STATUS(augur_model_load(argv[1], NULL, &m), AUGUR_OK);
    augur_session_params p = augur_session_params_default();
    p.n_ctx = 64;
    augur_session *s = NULL;
    CHECK_STATUS(augur_session_new(m, NULL, &p, &s), AUGUR_OK);
    char prompt[2048] = "";
    for (int i = 0; i < 200; i++) {
        strcat(prompt, " x");
    }
    CHECK_STATUS(augur_generate(s, prompt, 4, false, NULL, NULL, NULL),
                 AUGUR_CONTEXT_OVERFLOW);
    CHECK_MESSAGE("holds only 64");
    augur_session_free(s);
    augur_model_free(m);
    return finish("hostile");
}
