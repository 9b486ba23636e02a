"""SMS booking conversations through the real webhook under gunicorn, against a bare
Flask endpoint that returns static TwiML, measured in the same run.

What is measured: patients booking by SMS, each conversation the seven signed requests
of a new patient (hello, 1, ID number, name, cardiology, 1, yes), sent to `POST /sms` of
`gunicorn 'assistant.web:create_wsgi_app()'` with 2 workers. The baseline is
`bench/static_twiml.py` under the same gunicorn settings: the same requests, answered
with fixed TwiML and no work. The floor is `bench/webhook_floor.py`: the least a turn must
do (signature, event claim, encrypted state loaded and saved, one commit) on the plain
driver, no engine. Load comes from a client in its own process, `--connections`
threads each driving its own conversations over keep-alive HTTP on 127.0.0.1, after a
3-second warm-up that is not measured (gunicorn's workers load the app on their first
requests). Printed:
requests per second of each, the ratios to the baseline, and p50/p99 latency; on SQLite and on
PostgreSQL (a schema private to the run).

    python bench/webhooks.py [--seconds 20] [--connections 64] [--only sqlite|postgres]
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from twilio.request_validator import RequestValidator  # noqa: E402

from cryptography.fernet import Fernet  # noqa: E402

from bench.common import resident_id  # noqa: E402
from bench.webhook_floor import create_tables  # noqa: E402

TOKEN = "0123456789abcdef0123456789abcdef"
POSTGRES_URL = os.environ.get("ASSISTANT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
NAMES = ("Wang Fang", "Li Wei", "Zhang Min", "Liu Yang", "Chen Jing", "Zhao Lei")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def conversation(n: int) -> list[str]:
    number, _ = resident_id(n)
    return ["hello", "1", number, NAMES[n % len(NAMES)], "cardiology", "1", "yes"]


WARMUP_SECONDS = 3.0  # load before measuring: gunicorn's workers load the app on their first requests


def load(port: int, seconds: float, connections: int, first: int, queue) -> None:
    """In its own process: drive conversations for a warm-up, then for `seconds`; report
    the latencies of the requests sent after the warm-up (errors: of all of them)."""
    url = f"http://127.0.0.1:{port}/sms"
    validator = RequestValidator(TOKEN)
    measure_from = time.perf_counter() + WARMUP_SECONDS
    deadline = measure_from + seconds
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    counter = iter(range(first, first + 10_000_000))

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.perf_counter() < deadline:
            with lock:
                n = next(counter)
            sender = f"+86139{n // 10000:04d}{n % 10000:04d}"
            for step, body in enumerate(conversation(n)):
                params = {"MessageSid": f"SM{n:08d}{step:02d}{uuid.uuid4().hex[:20]}", "From": sender,
                          "To": "+8610651200000", "Body": body, "NumMedia": "0",
                          "AccountSid": "AC" + "0" * 32, "ApiVersion": "2010-04-01"}
                data = urlencode(params)
                headers = {"Content-Type": "application/x-www-form-urlencoded",
                           "X-Twilio-Signature": validator.compute_signature(url, params)}
                started = time.perf_counter()
                try:
                    conn.request("POST", "/sms", body=data, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    ok = response.status == 200
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    ok = False
                elapsed = time.perf_counter() - started
                with lock:
                    if started >= measure_from:
                        latencies.append(elapsed)
                    errors[0] += 0 if ok else 1
                if time.perf_counter() >= deadline:
                    break
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queue.put({"requests": len(latencies), "seconds": time.perf_counter() - measure_from,
               "errors": errors[0], "latencies": sorted(latencies)})


def serve(target: str, port: int, env: dict[str, str]) -> subprocess.Popen:
    if importlib.util.find_spec("gunicorn") is None:
        raise SystemExit("gunicorn is not installed: pip install -e '.[server]'")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}",
         "--log-level", "warning", target], cwd=ROOT, env=env)
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"gunicorn did not start {target}")


def measure(target: str, env: dict[str, str], seconds: float, connections: int, first: int) -> dict:
    port = free_port()
    env = {**env, "ASSISTANT_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    process = serve(target, port, env)
    try:
        queue = multiprocessing.Queue()
        client = multiprocessing.Process(target=load, args=(port, seconds, connections, first, queue))
        client.start()
        result = queue.get(timeout=seconds + 300)
        client.join()
    finally:
        process.terminate()
        process.wait(30)
    lat = result["latencies"] or [0.0]
    return {"rps": result["requests"] / result["seconds"], "errors": result["errors"],
            "p50": statistics.median(lat) * 1000, "p99": lat[int(len(lat) * 0.99) - 1 if len(lat) > 1 else 0] * 1000,
            "requests": result["requests"]}


def prepare(database_url: str, instance: Path) -> dict[str, str]:
    """A migrated database with the demo hospital, and the environment to serve it."""
    from assistant.booking.identity import Keyring

    keys = Keyring.generate()
    env = {**os.environ, "ASSISTANT_DATABASE_URL": database_url, "ASSISTANT_INSTANCE_PATH": str(instance),
           "ASSISTANT_BLIND_INDEX_KEY": keys.blind_index_key.decode(),
           "ASSISTANT_ENCRYPTION_KEY": keys.encryption_key.decode(), "ASSISTANT_GENERATE_SECRETS": "false",
           "ASSISTANT_TWILIO_AUTH_TOKEN": TOKEN, "ASSISTANT_LOG_LEVEL": "ERROR"}
    env.pop("ASSISTANT_NOW", None)
    subprocess.run([sys.executable, "-c", "from assistant.cli import run; run()", "seed", "--file",
                    str(ROOT / "config" / "demo_hospital.toml")], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    # Room for every conversation the run can make: capacity is not what is measured.
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE slot SET capacity = 100000"))
    engine.dispose()
    return env


def count_rows(database_url: str, table: str) -> int:
    """Rows the run wrote (bookings, the floor's claimed events): proof the requests did
    their work rather than fail fast."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as connection:
        made = connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
    engine.dispose()
    return made


def report(name: str, service: dict, baseline: dict, floor: dict, connections: int) -> None:
    ratio = service["rps"] / baseline["rps"] if baseline["rps"] else 0.0
    floor_ratio = floor["rps"] / baseline["rps"] if baseline["rps"] else 0.0
    print(f"{name}: baseline {baseline['rps']:.0f} requests/s (p50 {baseline['p50']:.1f} ms, p99 "
          f"{baseline['p99']:.1f} ms); floor {floor['rps']:.0f} requests/s (p50 {floor['p50']:.1f} ms, "
          f"p99 {floor['p99']:.1f} ms), ratio {floor_ratio:.3f}x, {floor['claimed']} turns saved, "
          f"{floor['errors']} errors; "
          f"service {service['rps']:.0f} requests/s (p50 {service['p50']:.1f} ms, "
          f"p99 {service['p99']:.1f} ms), ratio {ratio:.3f}x; {connections} connections, "
          f"{service['requests']} service requests, {service['bookings']} bookings made, "
          f"{service['errors']} errors")


def run(name: str, database_url: str, args) -> None:
    instance = Path(tempfile.mkdtemp(prefix=f"careline-bench-{name}-"))
    try:
        env = prepare(database_url, instance)
        baseline = measure("bench.static_twiml:app", env, args.seconds, args.connections, 0)
        create_tables(database_url)
        floor = measure("bench.webhook_floor:app", {**env, "FLOOR_FERNET_KEY": Fernet.generate_key().decode()},
                        args.seconds, args.connections, 0)
        floor["claimed"] = count_rows(database_url, "floor_event")
        service = measure("assistant.web:create_wsgi_app()", env, args.seconds, args.connections, 1)
        service["bookings"] = count_rows(database_url, "booking")
        report(name, service, baseline, floor, args.connections)
    finally:
        shutil.rmtree(instance, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--only", choices=("sqlite", "postgres"))
    args = parser.parse_args(argv)
    print(json.dumps({"seconds": args.seconds, "connections": args.connections,
                      "load": os.getloadavg()}))
    if args.only != "postgres":
        directory = Path(tempfile.mkdtemp(prefix="careline-bench-db-"))
        try:
            run("sqlite", f"sqlite:///{directory / 'careline.db'}", args)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    if args.only != "sqlite":
        from sqlalchemy import create_engine, text

        schema = f"careline_bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        separator = "&" if "?" in POSTGRES_URL else "?"
        try:
            run("postgres", f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}", args)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
