"""The ``tutoring`` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Sequence

from app.config import ConfigurationProblem, Settings, load_settings
from app.platform import logs
from app.platform.auth import mint_dev_token
from app.platform.errors import Unauthenticated
from app.platform.packs import install_pack
from app.runtime import ConfigurationError, Runtime, build_runtime
from app.tutoring.demo import DEMO_USERS, seed_demo
from app.tutoring.pack import PACKS

DEMO_ORG = "demo"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tutoring", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the GraphQL API under uvicorn")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--demo", action="store_true", help=f"seed the {DEMO_ORG!r} org first")
    serve.add_argument(
        "--org",
        action="append",
        default=[],
        dest="orgs",
        metavar="ORG",
        help="install the tutoring pack into ORG at start (repeatable; also TUTORING_ORGS)",
    )

    serve.add_argument(
        "--no-worker",
        action="store_true",
        help="do not run the job worker in this process (it does by default on the in-memory "
        "store, which another process could not see)",
    )

    sub.add_parser("worker", help="run the arq worker (job handlers, reconcile, outbox)")

    mcp = sub.add_parser("mcp", help="serve the agent's tools over MCP (stdio) as one user")
    mcp.add_argument("--token", help="the user's bearer token (default: $TUTORING_TOKEN)")
    mcp.add_argument("--demo", action="store_true", help=f"seed the {DEMO_ORG!r} org first")
    sub.add_parser("export-schema", help="print the GraphQL SDL (schema.graphql must equal it)")

    tok = sub.add_parser("dev-token", help="print a JWT signed with AUTH_DEV_SECRET")
    tok.add_argument("--org", required=True)
    tok.add_argument("--user", required=True)
    tok.add_argument("--role", action="append", required=True, dest="roles")
    tok.add_argument("--ttl", type=int, default=12 * 3600)

    inst = sub.add_parser("install-pack", help="install a pack into an organization (idempotent)")
    inst.add_argument("--org", required=True)
    inst.add_argument("--pack", default="tutoring", choices=sorted(PACKS))

    seed = sub.add_parser("seed-demo", help="install the tutoring pack and add demo data")
    seed.add_argument("--org", required=True)
    return p


def _dev_tokens(settings: Settings, org: str) -> list[str]:
    if not settings.auth_dev_secret:
        return ["(AUTH_DEV_SECRET is unset: no dev tokens)"]
    lines = []
    for user in DEMO_USERS:
        token = mint_dev_token(
            settings.auth_dev_secret,
            org=org,
            user=user.user_id,
            roles=[user.role],
            claims=settings.claim_names,
        )
        lines.append(f"{user.label:<16} {user.role:<9} {token}")
    return lines


async def _install(runtime: Runtime, org: str, pack: str) -> None:
    types = await install_pack(runtime.store, org, PACKS[pack])
    print(f"pack {pack!r} installed in {org!r}: {', '.join(t.slug for t in types)}", flush=True)


def _needs_shared_store(runtime: Runtime, command: str) -> None:
    """Commands that write for a server refuse the in-memory store: what they wrote would
    vanish with this process, unseen by any server."""
    if runtime.store.persistent:
        return
    raise ConfigurationError(
        f"`tutoring {command}` would write to this command's own in-memory store, which no "
        "server sees: set MONGODB_URL, or use `tutoring serve --org ORG` (TUTORING_ORGS), or "
        "call installPack over the API as the organization's admin."
    )


async def _seed(runtime: Runtime, org: str) -> None:
    await _install(runtime, org, "tutoring")
    added = await seed_demo(runtime.entities, org)
    print("demo data added" if added else "demo data already present")
    print("\n".join(_dev_tokens(runtime.settings, org)), flush=True)


async def _serve(runtime: Runtime, args: argparse.Namespace) -> None:
    from app.graphql.app import create_app
    from app.graphql.metrics import API_SERVICE_NAME
    from app.graphql.server import Server, server_config
    from app.platform.metrics import start_telemetry

    settings = runtime.settings
    # Before create_app: the schema carries the tracing extension only while tracing is on.
    telemetry = start_telemetry(
        API_SERVICE_NAME,
        otlp_endpoint=settings.otel_exporter_otlp_endpoint,
        metrics_port=settings.metrics_port,
        metrics_token=settings.metrics_token,
    )
    await runtime.verifier.start()  # the identity provider's keys, before the first request

    for org in dict.fromkeys([*runtime.settings.orgs, *args.orgs]):
        await _install(runtime, org, "tutoring")
    if args.demo:
        await _seed(runtime, DEMO_ORG)
        print(f"GraphiQL: http://{args.host}:{args.port}/graphql (paste a token into Headers)")
    # Redis counts rate limits across API processes and carries jobs to the worker.
    await runtime.attach_queue()
    config = server_config(
        create_app(runtime), args.host, args.port, log_level=runtime.settings.log_level.lower()
    )
    worker = None
    if not args.no_worker and not runtime.store.persistent:
        from workers.settings import worker_for

        # uvicorn handles the signals; the worker stops when the server does.
        worker = asyncio.create_task(worker_for(runtime, handle_signals=False).async_run())
        print("job worker running in this process (in-memory store)", flush=True)
    try:
        await Server(config).serve()
    finally:
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        await asyncio.to_thread(telemetry.close)


async def _work(runtime: Runtime) -> None:
    from workers.settings import worker_for

    if not runtime.store.persistent:
        raise ConfigurationError(
            "`tutoring worker` needs the store the API uses (MONGODB_URL): on the in-memory "
            "store it would see no API data. `tutoring serve` runs a worker in-process instead."
        )
    from workers.settings import worker_telemetry

    await runtime.attach_queue()
    telemetry = worker_telemetry(runtime)
    try:
        await worker_for(runtime).async_run()
    finally:
        await asyncio.to_thread(telemetry.close)


async def _mcp(runtime: Runtime, args: argparse.Namespace) -> None:
    from app.mcp_server import serve_stdio

    token = args.token or os.environ.get("TUTORING_TOKEN", "")
    await runtime.verifier.start()
    if args.demo:
        if runtime.store.persistent:
            raise ConfigurationError("--demo seeds only the in-memory store")
        await install_pack(runtime.store, DEMO_ORG, PACKS["tutoring"])
        await seed_demo(runtime.entities, DEMO_ORG)
    await serve_stdio(runtime, token)


async def _run(args: argparse.Namespace, settings: Settings) -> None:
    runtime = await build_runtime(settings)
    try:
        if args.command == "serve":
            await _serve(runtime, args)
        elif args.command == "worker":
            await _work(runtime)
        elif args.command == "mcp":
            await _mcp(runtime, args)
        elif args.command == "install-pack":
            _needs_shared_store(runtime, args.command)
            await _install(runtime, args.org, args.pack)
        elif args.command == "seed-demo":
            _needs_shared_store(runtime, args.command)
            await _seed(runtime, args.org)
    finally:
        await runtime.close()


def _dev_token(settings: Settings, args: argparse.Namespace) -> int:
    if settings.tutoring_env == "production":
        print(
            "dev-token is refused in production: tokens come from the identity provider.",
            file=sys.stderr,
        )
        return 2
    if not settings.auth_dev_secret:
        print("AUTH_DEV_SECRET is unset; dev tokens are refused.", file=sys.stderr)
        return 2
    token = mint_dev_token(
        settings.auth_dev_secret,
        org=args.org,
        user=args.user,
        roles=args.roles,
        ttl_seconds=args.ttl,
        claims=settings.claim_names,
    )
    print(token)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "export-schema":
        from app.graphql.schema import export_sdl

        sys.stdout.write(export_sdl())
        return 0
    try:
        settings = load_settings()
    except ConfigurationProblem as exc:
        print("\n".join(exc.lines), file=sys.stderr)
        return 2
    # Logs go to stderr: for `tutoring mcp`, stdout carries the protocol.
    logs.configure(settings.log_level, settings.log_format)
    if args.command == "dev-token":
        return _dev_token(settings, args)
    try:
        asyncio.run(_run(args, settings))
    except ConfigurationError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except Unauthenticated as exc:
        print(exc.message, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
