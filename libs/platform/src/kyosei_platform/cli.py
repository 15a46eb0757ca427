"""The ``kyosei`` command: what operators and auditors type.

kyosei dev                  every service on the embedded default
kyosei serve SERVICE        one service (HTTP API, relay, consumers)
kyosei migrate SERVICE      run a service's database migrations
kyosei verify SERVICE       check every hash chain, and the latest signed anchor
kyosei anchor SERVICE       sign an anchor of every stream's head and of the log
kyosei checkpoint-key       print the anchors' public key, for auditors
kyosei rebuild SERVICE      rebuild a service's read models from its events
                            (in an image, SERVICE defaults to the image's service)
kyosei dlq list SERVICE     the dead letters on a service's dead-letter topic
kyosei dlq replay SERVICE --offset N ... | --all
                            put dead letters back on their original topics, to be
                            processed again (once the cause is fixed)
kyosei republish SERVICE --from POSITION
                            publish a service's events from a log position again
                            (the relay's checkpoint does not move)
kyosei topics [SERVICE ...] create the Kafka topics of the services (default: every
                            installed one) with partitions and retention from settings;
                            existing topics are left and reported
kyosei keys rewrap [--batch N]
                            re-wrap every household key from KYOSEI_PREVIOUS_MASTER_KEY
                            to KYOSEI_MASTER_KEY (resumable; services may run)
kyosei keys erase SERVICE HOUSEHOLD
                            erase a household's key, recorded in the service's store
kyosei keys reconcile SERVICE
                            after restoring a key-vault backup: delete again every key
                            the service's store records as erased
kyosei token ...            issue an access token (KYOSEI_AUTH_SECRET, or the dev one)
kyosei services             list installed services

Settings: KYOSEI_* variables first; then, for what is not set, the settings file that
`kyosei dev` writes for each service in its data folder (data/<service>.env; another
folder with --data), so that right after `make dev` every command here works from the
project folder with nothing exported; then the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from typing import TypeVar

from pydantic_settings import BaseSettings

from . import service as services
from .auth import Role, issue_token
from .settings import DEV_DATA, Settings, env_file, load


def _data_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        default=DEV_DATA,
        help="the data folder of `kyosei dev`, whose settings files are read for what "
        f"KYOSEI_* variables do not set (default: {DEV_DATA})",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="kyosei", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="run every service on the embedded default")
    dev.add_argument("--data", default="data", help="folder for SQLite files (default: data)")
    dev.add_argument(
        "--port",
        type=int,
        default=services.FIRST_PORT,
        help=f"first HTTP port (default: {services.FIRST_PORT})",
    )
    dev.add_argument("--host", default="127.0.0.1")

    for name, help_ in (
        ("serve", "run one service"),
        ("migrate", "run a service's migrations"),
        ("verify", "verify every hash chain of a service's store, and its latest anchor"),
        ("anchor", "sign an anchor of a service's stream heads and log (run from cron)"),
        ("rebuild", "rebuild a service's read models from its events"),
    ):
        p = sub.add_parser(name, help=help_)
        # In an image, the image's own service (KYOSEI_SERVICE, set by the Dockerfile).
        p.add_argument("service", nargs="?", default=os.environ.get("KYOSEI_SERVICE"))
        _data_option(p)

    dlq = sub.add_parser("dlq", help="list or replay a service's dead letters")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    dlq_list = dlq_sub.add_parser(
        "list", help="the dead letters on the service's dead-letter topic"
    )
    dlq_replay = dlq_sub.add_parser(
        "replay", help="publish dead letters to their original topics again"
    )
    for p in (dlq_list, dlq_replay):
        p.add_argument("service", nargs="?", default=os.environ.get("KYOSEI_SERVICE"))
        _data_option(p)
    which = dlq_replay.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--offset",
        action="append",
        dest="offsets",
        metavar="[PARTITION:]OFFSET",
        help="a dead letter's offset on the dead-letter topic, as `kyosei dlq list` prints "
        "it (repeatable)",
    )
    which.add_argument("--all", action="store_true", help="every dead letter on the topic")

    again = sub.add_parser("republish", help="publish a service's events from a log position again")
    again.add_argument("service", nargs="?", default=os.environ.get("KYOSEI_SERVICE"))
    again.add_argument(
        "--from",
        dest="from_position",
        type=int,
        required=True,
        metavar="POSITION",
        help="the first log position to publish (1 for everything)",
    )
    _data_option(again)

    keys = sub.add_parser("keys", help="master-key rotation, erasure, reconciling the vault")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    rewrap = keys_sub.add_parser(
        "rewrap", help="re-wrap every household key from the previous master key to the new"
    )
    rewrap.add_argument("--batch", type=int, default=500, help="keys per transaction")
    erase = keys_sub.add_parser("erase", help="erase a household's key (crypto-shredding)")
    erase.add_argument("service", help="the service whose store records the erasure")
    erase.add_argument("household_id")
    reconcile = keys_sub.add_parser(
        "reconcile", help="delete again the keys a service's store records as erased"
    )
    reconcile.add_argument("service", nargs="?", default=os.environ.get("KYOSEI_SERVICE"))
    for p in (rewrap, erase, reconcile):
        _data_option(p)

    declare = sub.add_parser("topics", help="create the services' Kafka topics")
    declare.add_argument(
        "services", nargs="*", help="services whose topics to create (default: every installed)"
    )
    _data_option(declare)

    token = sub.add_parser("token", help="issue an access token")
    token.add_argument("--agency", required=True)
    token.add_argument("--staff", required=True)
    token.add_argument("--role", choices=[r.value for r in Role], default=Role.STAFF.value)
    token.add_argument("--hours", type=float, default=8)
    token.add_argument(
        "--data", default=DEV_DATA, help="dev data folder, when KYOSEI_AUTH_SECRET is unset"
    )

    sub.add_parser("services", help="list installed services")
    _data_option(
        sub.add_parser("checkpoint-key", help="print the public key that verifies anchors")
    )
    args = parser.parse_args(argv)

    if args.command == "dev":
        from .dev import run_dev

        asyncio.run(run_dev(args.data, args.host, args.port))
    elif args.command == "services":
        for name, svc in services.discover().items():
            print(f"{name:14} {svc.title}")
    elif args.command == "checkpoint-key":
        from .maintenance import checkpoint_key

        public = os.environ.get("KYOSEI_CHECKPOINT_PUBLIC_KEY")
        private = os.environ.get("KYOSEI_CHECKPOINT_SIGNING_KEY")
        if not (public or private) and (first := _dev_service(args.data)):
            private = _settings(first, args.data).checkpoint_signing_key
        print(checkpoint_key(public, private))
    elif args.command == "topics":
        from .kafka_topics import create_topics

        chosen = [services.get(n) for n in args.services] or list(services.discover().values())
        settings = _settings(_dev_service(args.data) or chosen[0].name, args.data)
        sys.exit(asyncio.run(create_topics(chosen, settings)))
    elif args.command == "keys" and args.keys_command == "rewrap":
        from .keys import rewrap_command

        settings = _settings(_dev_service(args.data), args.data)
        sys.exit(asyncio.run(rewrap_command(settings, args.batch)))
    elif args.command == "token":
        print(
            issue_token(
                _auth_secret(args.data),
                args.agency,
                args.staff,
                Role(args.role),
                int(args.hours * 3600),
            )
        )
    else:
        if not args.service:
            parser.error(f"{args.command}: name a service (installed: {_installed()})")
        svc = services.get(args.service)
        settings = _settings(svc.name, args.data)
        if args.command in ("dlq", "republish"):
            sys.exit(asyncio.run(_recover(args, svc, settings)))
        if args.command == "keys":
            from . import keys as vault_ops

            if args.keys_command == "erase":
                sys.exit(
                    asyncio.run(vault_ops.erase_command(svc.name, settings, args.household_id))
                )
            sys.exit(asyncio.run(vault_ops.reconcile_command(svc.name, settings)))
        # Read the service's own settings in every command, so that a bad value stops
        # `kyosei migrate` (the init container) before the service is rolled out.
        own = _configured(lambda: svc.load_settings(env_file(args.data, svc.name)))
        if args.command == "serve":
            _serve(svc, settings, own)
        elif args.command == "migrate":
            import structlog

            from .logging import configure
            from .migrate import upgrade

            # The init container: its lines (Alembic's too) are JSON like the service's.
            configure(settings.log_level, settings.log_format)
            upgrade(svc, settings)
            structlog.get_logger("kyosei.migrate").info(
                "migrated", service=svc.name, revision="head"
            )
        elif args.command == "verify":
            from .maintenance import verify

            sys.exit(asyncio.run(verify(svc, settings)))
        elif args.command == "anchor":
            from .maintenance import anchor

            sys.exit(asyncio.run(anchor(svc, settings)))
        elif args.command == "rebuild":
            from .maintenance import rebuild

            asyncio.run(rebuild(svc, settings))


async def _recover(args: argparse.Namespace, svc: services.Service, settings: Settings) -> int:
    from . import recovery

    if args.command == "republish":
        return await recovery.republish(svc.name, settings, from_position=args.from_position)
    if args.dlq_command == "list":
        return await recovery.list_dead_letters(svc.name, settings)
    return await recovery.replay(
        svc.name, settings, offsets=args.offsets or (), everything=args.all
    )


def _installed() -> str:
    return ", ".join(services.discover()) or "none"


def _settings(service: str | None, data: str) -> Settings:
    """``service``'s settings: KYOSEI_* variables, then its settings file in the data
    folder of `kyosei dev`, then the defaults."""
    return _configured(lambda: load(service, data))


def _dev_service(data: str) -> str | None:
    """A service whose settings file is in the data folder (for the commands that are
    about no one service: the key vault, the topics, the anchors' key)."""
    return next((name for name in services.discover() if env_file(data, name)), None)


T = TypeVar("T")


def _configured(make: Callable[[], T]) -> T:
    try:
        return make()
    except Exception as exc:
        raise SystemExit(
            f"configuration error:\n{exc}\n(set KYOSEI_* variables, or run from the folder "
            "of a `make dev` data folder, or name it with --data)"
        ) from None


def _auth_secret(data: str) -> str:
    if secret := os.environ.get("KYOSEI_AUTH_SECRET"):
        return secret
    from .dev import dev_secrets

    return dev_secrets(data)["auth_secret"]


def _serve(svc: services.Service, settings: Settings, own: BaseSettings | None) -> None:
    import uvicorn

    from .http import create_app, server_config
    from .logging import configure

    configure(settings.log_level, settings.log_format)
    uvicorn.Server(server_config(create_app(svc, settings, own), settings)).run()


if __name__ == "__main__":
    main()
