"""The ``tutoring`` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from app.config import Settings
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
    print(f"pack {pack!r} installed in {org!r}: {', '.join(t.slug for t in types)}")


async def _seed(runtime: Runtime, org: str) -> None:
    await _install(runtime, org, "tutoring")
    added = await seed_demo(runtime.entities, org)
    print("demo data added" if added else "demo data already present")
    print("\n".join(_dev_tokens(runtime.settings, org)), flush=True)


async def _serve(runtime: Runtime, args: argparse.Namespace) -> None:
    import uvicorn

    from app.graphql.app import create_app

    if args.demo:
        await _seed(runtime, DEMO_ORG)
        print(f"GraphiQL: http://{args.host}:{args.port}/graphql (paste a token into Headers)")
    config = uvicorn.Config(create_app(runtime), host=args.host, port=args.port, log_level="info")
    worker = None
    if not args.no_worker and not runtime.store.persistent:
        from workers.settings import worker_for

        await runtime.attach_queue()
        worker = asyncio.create_task(worker_for(runtime).async_run())
        print("job worker running in this process (in-memory store)", flush=True)
    try:
        await uvicorn.Server(config).serve()
    finally:
        if worker is not None:
            worker.cancel()


async def _work(runtime: Runtime) -> None:
    from workers.settings import worker_for

    await runtime.attach_queue()
    await worker_for(runtime).async_run()


async def _mcp(runtime: Runtime, args: argparse.Namespace) -> None:
    from app.mcp_server import serve_stdio

    token = args.token or os.environ.get("TUTORING_TOKEN", "")
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
            await _install(runtime, args.org, args.pack)
        elif args.command == "seed-demo":
            await _seed(runtime, args.org)
    finally:
        await runtime.close()


def main(argv: Sequence[str] | None = None) -> int:
    # Logs go to stderr: for `tutoring mcp`, stdout carries the protocol.
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    if args.command == "export-schema":
        from app.graphql.schema import export_sdl

        sys.stdout.write(export_sdl())
        return 0
    settings = Settings()
    if args.command == "dev-token":
        if not settings.auth_dev_secret:
            print("AUTH_DEV_SECRET is unset; dev tokens are refused.", file=sys.stderr)
            return 2
        print(
            mint_dev_token(
                settings.auth_dev_secret,
                org=args.org,
                user=args.user,
                roles=args.roles,
                ttl_seconds=args.ttl,
                claims=settings.claim_names,
            )
        )
        return 0
    try:
        asyncio.run(_run(args, settings))
    except ConfigurationError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except Unauthenticated as exc:
        print(exc.message, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
