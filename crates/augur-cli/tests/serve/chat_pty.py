"""Drives `augur chat` through a pseudo-terminal, as a person would type.

Run by crates/augur-cli/tests/serve.rs with AUGUR_BIN and AUGUR_MODEL set:
two turns (the second reuses the first's cache), Ctrl-C during an answer
(the answer stops, the program does not), /reset, /stats, and Ctrl-D to exit
with status 0. Exits non-zero, with the screen so far, when a check fails.
"""

import os
import pty
import re
import select
import sys
import time

BIN = os.environ["AUGUR_BIN"]
MODEL = os.environ["AUGUR_MODEL"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\r")

pid, fd = pty.fork()
if pid == 0:
    os.execv(BIN, [BIN, "chat", "-m", MODEL, "-n", "400", "--system", "You are a helpful assistant."])

screen = ""


def read_until(pattern, timeout=120):
    """Reads the terminal until `pattern` (a regex) appears after what was
    already consumed; returns the text up to and including the match."""
    global screen
    deadline = time.time() + timeout
    while True:
        m = re.search(pattern, screen)
        if m:
            out, screen = screen[: m.end()], screen[m.end():]
            return out
        left = deadline - time.time()
        if left <= 0:
            fail(f"timed out waiting for {pattern!r}")
        ready, _, _ = select.select([fd], [], [], min(left, 0.5))
        if ready:
            try:
                data = os.read(fd, 4096)
            except OSError:
                data = b""
            if not data:
                fail(f"the program ended while waiting for {pattern!r}")
            screen += ANSI.sub("", data.decode("utf-8", "replace"))


def fail(why):
    sys.stderr.write(f"FAILED: {why}\n--- screen ---\n{screen}\n")
    try:
        os.kill(pid, 9)
    except OSError:
        pass
    sys.exit(1)


def type_line(text):
    os.write(fd, text.encode() + b"\r")


# The prompt, at the start of a line after the previous output.
PROMPT = r"\n> "


def command(text, timeout=120):
    """Types a line; returns what the program printed before its next prompt."""
    type_line(text)
    read_until(r"\n")  # the line itself, echoed
    return read_until(PROMPT, timeout)


STATS = r"prompt: (\d+) tokens, (\d+) evaluated in [\d.]+ s, (\d+) reused"

read_until(PROMPT)
first = command("What is the capital of France?")
print("turn 1:", first.strip())
m = re.search(STATS, command("/stats"))
if not m:
    fail("no prompt line in /stats")
if int(m.group(3)) != 0:
    fail("the first turn reused tokens from nowhere")

second = command("And of Germany?")
print("turn 2:", second.strip())
stats2 = command("/stats")
m = re.search(STATS, stats2)
if not m:
    fail("no prompt line in /stats after turn 2")
total, evaluated, reused = map(int, m.groups())
print(f"turn 2: {total} prompt tokens, {evaluated} evaluated, {reused} reused")
if reused == 0 or evaluated >= total or evaluated + reused != total:
    fail("turn 2 did not reuse turn 1's cache")
if "2 user turn(s)" not in stats2:
    fail("the conversation does not count two turns")

# Ctrl-C while the answer streams: it stops, and the prompt comes back.
type_line("Write a long story about a dragon who learns to fly.")
read_until(r"\n")
read_until(r"\S{3}")  # the answer has started
os.write(fd, b"\x03")
read_until(r"\[stopped\]", timeout=30)
read_until(PROMPT, timeout=30)
if "stopped by you" not in command("/stats"):
    fail("/stats does not say the answer was stopped")

if "(new conversation)" not in command("/reset"):
    fail("/reset did not answer")
if "0 user turn(s)" not in command("/stats"):
    fail("/reset did not start a new conversation")

# Ctrl-C at the prompt does not exit either; Ctrl-D does.
os.write(fd, b"\x03")
read_until(r"Ctrl-D or /exit quits")
read_until(PROMPT)
os.write(fd, b"\x04")
deadline = time.time() + 30
status = None
while time.time() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    try:
        if select.select([fd], [], [], 0.2)[0]:
            os.read(fd, 4096)
    except OSError:
        time.sleep(0.1)
else:
    fail("Ctrl-D did not exit")
if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0:
    fail(f"exit status {status}")
print("chat: ok")
