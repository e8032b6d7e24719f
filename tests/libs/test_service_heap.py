"""A started service keeps the cycle collector off its start-up heap (``libs.runtime.host.settle_heap``).

Run in a fresh interpreter: freezing this test process's heap would change every test after it.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import gc
    from libs.runtime.host import GC_YOUNG_THRESHOLD, settle_heap

    startup = [[index] for index in range(1000)]  # what a service builds before it serves
    assert gc.get_freeze_count() == 0
    settle_heap()
    assert gc.get_freeze_count() >= len(startup), gc.get_freeze_count()
    assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD > 700, gc.get_threshold()
    assert not any(item is startup for item in gc.get_objects()), "start-up objects still walked"

    class Node:
        pass

    garbage = Node()
    garbage.itself = garbage  # a cycle made while serving is still collected
    del garbage
    assert gc.collect() >= 1
    print("ok")
""")


def test_settle_heap_freezes_start_up_objects_and_still_collects_new_cycles() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
