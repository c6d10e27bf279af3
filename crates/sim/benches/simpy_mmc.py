#!/usr/bin/env python3
"""SimPy peer of the simulator's queueing core: the same M/M/c queue, customers per second.

Creates a virtual environment (default: <target dir>/simpy-venv) and pip-installs SimPy into
it on first use, then re-runs itself inside it. Prints one JSON line:
  {"customers": N, "seconds": S, "customers_per_second": R, "mean_wait": W, "simpy": "4.x"}

Usage: simpy_mmc.py [--venv DIR] [--lam 2.4] [--mu 1.0] [--c 3] [--customers 200000] [--seed 1]
"""
import argparse
import json
import os
import random
import subprocess
import sys
import time


def ensure_venv(venv):
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True, stdout=sys.stderr)
    probe = subprocess.run([python, "-c", "import simpy"], capture_output=True)
    if probe.returncode != 0:
        subprocess.run([python, "-m", "pip", "install", "--quiet", "simpy==4.1.1"], check=True,
                       stdout=sys.stderr)
    return python


def run(lam, mu, c, customers, seed):
    import simpy

    rng = random.Random(seed)
    env = simpy.Environment()
    staff = simpy.Resource(env, capacity=c)
    waits = [0.0]
    done = [0]

    def customer(env):
        arrived = env.now
        with staff.request() as req:
            yield req
            waits[0] += env.now - arrived
            yield env.timeout(rng.expovariate(mu))
        done[0] += 1

    def source(env):
        for _ in range(customers):
            yield env.timeout(rng.expovariate(lam))
            env.process(customer(env))

    env.process(source(env))
    start = time.perf_counter()
    env.run()
    seconds = time.perf_counter() - start
    return {
        "customers": done[0],
        "seconds": seconds,
        "customers_per_second": done[0] / seconds,
        "mean_wait": waits[0] / max(done[0], 1),
        "simpy": simpy.__version__ if hasattr(simpy, "__version__") else "4",
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--venv", default=None)
    p.add_argument("--lam", type=float, default=2.4)
    p.add_argument("--mu", type=float, default=1.0)
    p.add_argument("--c", type=int, default=3)
    p.add_argument("--customers", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if not a.inside:
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "..", "target"))
        venv = a.venv or os.path.join(target, "simpy-venv")
        python = ensure_venv(venv)
        args = [python, __file__, "--inside", "--lam", str(a.lam), "--mu", str(a.mu), "--c", str(a.c),
                "--customers", str(a.customers), "--seed", str(a.seed)]
        sys.exit(subprocess.run(args).returncode)
    print(json.dumps(run(a.lam, a.mu, a.c, a.customers, a.seed)))


if __name__ == "__main__":
    main()
