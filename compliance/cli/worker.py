"""``compliance worker``: one member of a Redis Streams worker pool (see docs/deployment.md).

Reads transcript/chat/batch messages (websocket protocol JSON in each entry's ``data`` field) from
the input stream(s) as a member of a consumer group, writes one entry per finding to the output
stream (fields ``id`` and ``data``), acknowledges each input entry in the same transaction, and
moves entries it cannot process to the dead-letter stream. SIGTERM/SIGINT: finish the batch in
hand, release the partitions, exit 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from ..session import SessionConfig
from . import EXIT_OK
from ._common import add_rule_options, load_from_args

DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "worker",
        help="check messages from Redis Streams in a consumer group (at least once)",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
    )
    g = p.add_argument_group("streams")
    g.add_argument("--redis", metavar="URL", default=os.environ.get("COMPLIANCE_REDIS", DEFAULT_REDIS),
                   help="redis:// URL (default: $COMPLIANCE_REDIS or %(default)s)")
    g.add_argument("--input", required=True, metavar="STREAM",
                   help="input stream; with --partitions N the streams STREAM:0 .. STREAM:N-1")
    g.add_argument("--group", required=True, metavar="GROUP", help="consumer group shared by the workers")
    g.add_argument("--output", required=True, metavar="STREAM", help="stream the findings are added to")
    g.add_argument("--partitions", type=int, default=1, metavar="N",
                   help="input partitions (by crc32(stream_id) %% N); must match the producers (default 1)")
    g.add_argument("--dead-letter", metavar="STREAM", help="dead-letter stream (default: INPUT:dead)")
    g.add_argument("--consumer", metavar="NAME", help="this worker's consumer name (default: HOST-PID)")
    g.add_argument("--output-maxlen", type=int, metavar="N", help="trim the output stream to about N entries")
    t = p.add_argument_group("tuning")
    t.add_argument("--batch", type=int, default=500, metavar="N", help="entries per read and check_batch (default 500)")
    t.add_argument("--block-ms", type=int, default=1000, metavar="MS", help="XREADGROUP BLOCK (default 1000)")
    t.add_argument("--lease-ttl", type=float, default=10.0, metavar="SEC",
                   help="partition lease TTL: a dead worker's partitions move after this long (default 10)")
    t.add_argument("--claim-idle", type=float, default=30.0, metavar="SEC",
                   help="reclaim entries pending this long on owned partitions (default 30)")
    t.add_argument("--max-deliveries", type=int, default=5, metavar="N",
                   help="dead-letter an entry delivered more often than this (default 5)")
    t.add_argument("--max-text-chars", type=int, default=10_000, metavar="N",
                   help="longer texts are dead-lettered (default 10000)")
    t.add_argument("--no-join", dest="join", action="store_false",
                   help="check every message alone (no cross-message windows)")
    sc = SessionConfig()
    t.add_argument("--tail-chars", type=int, default=sc.tail_chars, metavar="N",
                   help="characters of a speaker's last words joined to the next message (default %(default)s)")
    t.add_argument("--host-window", type=float, default=sc.host_window, metavar="SEC",
                   help="host speech join window (default %(default)s)")
    t.add_argument("--chat-window", type=float, default=sc.chat_window, metavar="SEC",
                   help="chat join window (default %(default)s)")
    t.add_argument("--max-streams", type=int, default=sc.max_streams, metavar="N",
                   help="live streams with a window in memory per partition (default %(default)s)")
    t.add_argument("--replay-window", type=float, metavar="SEC",
                   help="seconds of a partition's history re-checked to rebuild its windows when a worker takes it "
                        "over (default: the longer join window; 0: none)")
    t.add_argument("--replay-max", type=int, default=200_000, metavar="N",
                   help="at most N entries replayed per takeover (default %(default)s)")
    t.add_argument("--retain", type=float, default=60.0, metavar="SEC",
                   help="trim the input to SEC seconds before the oldest unacknowledged entry (XTRIM MINID ~; "
                        "default %(default)s; 0: never, e.g. when other groups read the input)")
    o = p.add_argument_group("operations")
    o.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="serve Prometheus metrics on 127.0.0.1:PORT/metrics (0 picks a free port)")
    o.add_argument("--metrics-host", default="127.0.0.1", metavar="ADDR", help="address for --metrics-port")
    o.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="info")
    add_rule_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import redis

    from livestream_compliance_server.worker import Worker, WorkerConfig
    from livestream_compliance_server.worker_metrics import WorkerMetrics, serve_metrics

    from ..errors import UsageError

    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    config = WorkerConfig(
        redis_url=args.redis,
        input=args.input,
        group=args.group,
        output=args.output,
        partitions=args.partitions,
        consumer=args.consumer,
        dead_letter=args.dead_letter,
        batch=args.batch,
        block_ms=args.block_ms,
        lease_ttl=args.lease_ttl,
        claim_idle=args.claim_idle,
        max_deliveries=args.max_deliveries,
        max_text_chars=args.max_text_chars,
        output_maxlen=args.output_maxlen,
        join=args.join,
        replay_window=args.replay_window,
        replay_max=args.replay_max,
        retain=args.retain,
        session=SessionConfig(
            tail_chars=args.tail_chars, host_window=args.host_window, chat_window=args.chat_window,
            max_streams=args.max_streams,
        ),
    ).validate()
    # SIGTERM during the rule load must not kill the process half-way either: remember it
    stop_requested: list[int] = []
    worker_ref: list[Worker] = []

    def on_signal(signum: int, _frame: object) -> None:
        stop_requested.append(signum)
        if worker_ref:
            worker_ref[0].request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    checker = load_from_args(args)  # RuleError propagates: exit 2 naming the file/rule/field
    metrics = WorkerMetrics()
    try:
        worker = Worker(config, checker, metrics=metrics)
        worker.r.ping()
    except redis.RedisError as exc:
        raise UsageError(f"cannot reach redis at {config.redis_url}: {exc}") from None
    worker_ref.append(worker)
    if stop_requested:
        worker.request_stop()
    where = "off"
    if args.metrics_port is not None:
        try:
            port = serve_metrics(metrics, args.metrics_port, args.metrics_host)
        except OSError as exc:
            raise UsageError(f"cannot serve metrics on {args.metrics_host}:{args.metrics_port}: {exc.strerror or exc}") from None
        where = f"http://{args.metrics_host}:{port}/metrics"
    parts = f"{config.partitions} partitions" if config.partitions > 1 else "1 partition"
    sys.stderr.write(
        f"compliance worker {config.consumer}: {len(checker.rules)} rules, version {checker.version}; "
        f"input {config.input} ({parts}), group {config.group}, output {config.output}, "
        f"dead letters {config.dead_letter}; metrics {where}\n"
    )
    sys.stderr.flush()
    from livestream_compliance_server.app import tune_gc

    tune_gc()  # the rules, jieba and matchers are long-lived: out of every later collection (~15% less CPU/entry)
    try:
        return worker.run() or EXIT_OK
    except redis.RedisError as exc:
        raise UsageError(f"redis at {config.redis_url}: {exc}") from None
