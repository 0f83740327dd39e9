"""A deliberately hostile evaluator: its config picks the attack. Built by the test suite."""

import os

from vigilo_sdk import Evaluator, binary, finding, log

evaluator = Evaluator(name="tests/hostile", version="1.0.0", description="misbehaves on request")


@evaluator.evaluate
def evaluate(case, actual, config):
    attack = config.get("attack", "none")
    if attack == "loop":
        n = 0
        while True:
            n += 1
    if attack == "memory":
        hoard = []
        while True:
            hoard.append(bytearray(1 << 20))
    if attack == "trap":
        raise RuntimeError("deliberate failure")
    if attack == "value_error":
        raise ValueError("deliberately bad value")
    if attack == "memory_error":
        raise MemoryError("deliberately out of memory")
    if attack == "print":
        # Far more than the host keeps of a call's output: the rest is dropped, not an error for the guest.
        for i in range(200):
            print(f"debug line {i} " + "z" * 100)
    if attack == "file":
        with open("/etc/passwd") as fh:
            return binary(False, [finding("critical", "leak", fh.read())])
    if attack == "env":
        leaked = dict(os.environ)
        return binary(not leaked, [finding("info", "env", repr(sorted(leaked)))])
    if attack == "sleep":
        import time

        time.sleep(60)
    if attack == "logs":
        for i in range(10_000):
            log("info", f"line {i}")
    if attack == "huge_log":
        log("warn", "x" * 100_000)
    if attack == "oversized":
        return binary(True, [finding("info", "big", "y" * (2 << 20))])
    if attack == "state":
        # A module-level counter: with a fresh instance per case it is always 1.
        global CALLS
        CALLS = globals().get("CALLS", 0) + 1
        return binary(True, explanation=str(CALLS))
    return binary(actual.get("text") == "ok")


WitWorld = evaluator.world()
