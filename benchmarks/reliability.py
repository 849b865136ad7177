"""The node's reliability figures: shutdown time, 100 lifecycle cycles, live fuzz, slow backend.

The same measurements as ``test/ros/test_node_reliability.py`` (``test/ros/reliability_rig.py``),
repeated, with the numbers kept instead of asserted:

1. shutdown: ``unimrseg_node`` (shipped config) publishing masks from the simulated cameras gets
   SIGINT or SIGTERM; seconds until the process is gone (``--shutdown-runs`` each; target < 2 s),
   plus what an interpreter with the node's imports alone takes to exit (the floor);
2. lifecycle: ``--cycles`` x configure/activate/deactivate/cleanup in-process through the
   node's ``~/change_state`` service; RSS, threads and entities at start / after warm-up / end;
3. live fuzz: ``--fuzz-count`` fuzzed Image messages from another process (reliable, flow
   controlled); what the node counted by reason, outputs during and after, agreement of the
   masks after it with the offline Segmenter;
4. slow backend: the real backend 0.3 s slower, cameras at 10 Hz (``--slow-runs`` runs);
   outputs, drops, output age first vs last.

Writes ``benchmarks/results/reliability.json``.

    python benchmarks/reliability.py [--shutdown-runs 10] [--cycles 100] [--fuzz-count 3000]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path[:0] = [str(REPO / "test" / "ros"), str(REPO / "test")]

from common import environment, write_result  # noqa: E402
from conftest import ros_vars  # noqa: E402  (test/conftest.py: the suite's ROS environment)

from unimrseg_ros.domain import TEST_DOMAIN_IDS, TEST_LOCK_DIR, DomainLease  # noqa: E402

TARGET_EXIT_S = 2.0


def stats(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
        "min": round(min(values), 3),
        "runs": len(values),
    }


def interpreter_exit_s(runs: int = 5) -> dict[str, Any]:
    """Seconds from the last line of a script that only imports the node's module to its exit."""
    code = (
        "import sys, unimrseg_ros.segmentation_node as n\n"
        "print('torch' in sys.modules, 'onnxruntime' in sys.modules, flush=True)\n"
        "print('END', flush=True)\n"
    )
    gaps = []
    torch_loaded = None
    for _ in range(runs):
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        torch_loaded = proc.stdout.readline().split()[0] == "True"
        assert proc.stdout.readline().strip() == "END"
        end = time.monotonic()
        proc.wait(30)
        gaps.append(time.monotonic() - end)
    return {"exit_s": stats(gaps), "torch_imported_by_the_node_module": torch_loaded}


def shutdown(rig: Any, runs: int) -> dict[str, Any]:
    from reliability_rig import exit_after_signal

    out: dict[str, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        results = []
        for i in range(runs):
            node = rig.fresh_node()
            time.sleep(1.0)  # inference running, frames in flight
            results.append(exit_after_signal(node, sig))
            rig.node = None
            last = results[-1]
            print(f"  {sig.name} run {i + 1}: exit {last['exit_s']:.2f} s, code {last['exit_code']}")
        times = [r["exit_s"] for r in results]
        teardown = [r["teardown_s"] for r in results if r["teardown_s"] is not None]
        out[sig.name] = {
            "exit_s": stats(times),
            "node_teardown_s": stats(teardown) if teardown else None,
            "exit_codes": sorted({r["exit_code"] for r in results}, key=str),
            "hung": sum(r["hung"] for r in results),
            "tracebacks": sum(r["traceback"] for r in results),
            "target_s": TARGET_EXIT_S,
            "target_met": max(times) < TARGET_EXIT_S,
        }
    return out


def live_fuzz(rig: Any, count: int, seed: int) -> dict[str, Any]:
    from node_rig import wait_for
    from reliability_rig import ALL, FUZZ_NODE_ARGS, offline_agreement
    from reliability_rig import live_fuzz as run_fuzz

    from unimrseg_core.image_msg import REASONS
    from unimrseg_core.modalities import MODALITIES

    rig.node_with(*FUZZ_NODE_ARGS)
    if not rig.wait_used(ALL, timeout=30):
        raise RuntimeError(f"the node is not using every camera\n{rig.logs()}")
    wait_for(lambda: all(rig.listener.diag(m) for m in MODALITIES), 10)

    def rejected() -> dict[str, dict[str, int]]:
        out = {}
        for m in MODALITIES:
            values = rig.listener.diag(m).values
            out[m] = {r: int(values[f"rejected.{r}"]) for r in REASONS if f"rejected.{r}" in values}
        return out

    before = rejected()
    summary = run_fuzz(rig, count=count, seed=seed)
    start_ns, end_ns = summary["window_ns"]
    sent = {m: {**summary["sent_by_modality"][m]} for m in MODALITIES}
    for m in MODALITIES:  # the fuzzer's probes (its readers-matched check) are counted too
        for r, n in summary["probes_by_modality"][m].items():
            sent[m][r] = sent[m].get(r, 0) + n
    expected = {
        m: {r: before[m].get(r, 0) + n for r, n in sent[m].items() if r != "accepted"} for m in MODALITIES
    }
    counted = wait_for(lambda: rejected() == expected, 15)
    recovered_at = wait_for(
        lambda: next((s for s in rig.listener.status_list() if s.stamp_ns > end_ns and s.used == ALL), None),
        20,
    )
    wait_for(lambda: sum(s.stamp_ns > end_ns for s in rig.listener.status_list()) >= 30, 20)  # to compare
    compared = offline_agreement(rig.listener, rig.sim, end_ns)
    during = [s for s in rig.listener.status_list() if start_ns <= s.stamp_ns <= end_ns]
    after = [s for s in rig.listener.status_list() if s.stamp_ns > end_ns]
    node = rig.node
    return {
        "seed": seed,
        "messages_sent": summary["sent"],
        "sent_by_modality_and_reason": summary["sent_by_modality"],
        "sent_by_kind": summary["sent_by_kind"],
        "messages_over_512kb": summary["big_messages"],
        "built_reason_differs_from_decode": len(summary["mismatches"]),
        "rejected_by_node_during_fuzz": {
            m: {r: n - before[m].get(r, 0) for r, n in rejected()[m].items()} for m in MODALITIES
        },
        "every_malformed_message_counted": bool(counted),
        "accepted_sent": sum(summary["sent_by_modality"][m].get("accepted", 0) for m in MODALITIES),
        "publish_seconds": summary["publish_seconds"],
        "messages_per_second": summary["messages_per_second"],
        "flow_control_wait_seconds": summary["flow_control_wait_seconds"],
        "outputs_during_fuzz": len(during),
        "outputs_during_fuzz_all_three": sum(s.used == ALL for s in during),
        "first_full_output_after_s": round((recovered_at.stamp_ns - end_ns) / 1e9, 3)
        if recovered_at
        else None,
        "outputs_after": len(after),
        "outputs_compared_with_offline": len(compared),
        "agreement_min": min((c["agreement"] for c in compared), default=None),
        "agreement_mean": round(statistics.fmean(c["agreement"] for c in compared), 6) if compared else None,
        "mask_size_and_stamp_right": all(
            tuple(c["size"]) == (240, 320) and c["frame_id"] == "sim_rgb_optical_frame" for c in compared
        ),
        "backend": compared[0]["backend"] if compared else None,
        "node_alive": node is not None and node.proc.poll() is None,
        "node_traceback": node is not None and "Traceback" in node.text(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shutdown-runs", type=int, default=10)
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--fuzz-count", type=int, default=3000)
    parser.add_argument("--fuzz-seed", type=int, default=5)
    parser.add_argument("--slow-runs", type=int, default=3)
    parser.add_argument("--slow-seconds", type=float, default=6.0)
    args = parser.parse_args()

    lease = DomainLease(TEST_DOMAIN_IDS, TEST_LOCK_DIR)
    env_vars = ros_vars(lease.domain_id)
    os.environ.update(env_vars)
    env = {**os.environ, **env_vars}
    import rclpy
    from node_rig import Listener, Sim
    from reliability_rig import NodeRig, in_process, lifecycle_cycles, slow_backend

    tmp = Path(tempfile.mkdtemp(prefix="bench_reliability_"))
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=lease.domain_id)
    payload: dict[str, Any] = {
        "environment": environment(("numpy", "onnxruntime", "torch", "ros-rclpy")),
        "domain_id": lease.domain_id,
    }
    try:
        print(f"lifecycle: {args.cycles} cycles in-process")
        with in_process(context) as h:
            payload["lifecycle"] = lifecycle_cycles(h, cycles=args.cycles, warmup=5, feed_every=10)
        print(f"  {payload['lifecycle']['rss_mb']}")

        runs = []
        for i in range(args.slow_runs):
            with in_process(context) as h:
                runs.append(slow_backend(h, delay_s=0.3, seconds=args.slow_seconds))
            print(f"  slow backend run {i + 1}: {runs[-1]['outputs']} outputs, {runs[-1]['dropped']} dropped")
        payload["slow_backend"] = {"runs": runs}

        print("interpreter exit with the node's imports")
        payload["interpreter_exit"] = interpreter_exit_s()
        rig = NodeRig(env, tmp, Listener(context, keep_data=200), Sim(env, tmp))
        try:
            print(f"live fuzz: {args.fuzz_count} messages")
            payload["live_fuzz"] = live_fuzz(rig, args.fuzz_count, args.fuzz_seed)
            print(f"shutdown: {args.shutdown_runs} runs per signal")
            payload["shutdown"] = shutdown(rig, args.shutdown_runs)
        finally:
            rig.close()
    finally:
        rclpy.shutdown(context=context)
        lease.release()
    payload["logs"] = str(tmp)
    print(f"wrote {write_result('reliability', payload)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
