"""The demo control (only under `lifeline demo`): flip a simulated Outpost between connected and not.

`install` adds these routes to an app made by `create_app` and puts the demo fleet in
`app.state.demo_fleet`; production apps never carry them.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, FastAPI, Form, HTTPException, Request, status
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from app.services.drills import lifecycle, runner
from app.web.deps import AppSettings, DbSession
from app.web.security import Responder, actor_of, now_utc
from app.web.templating import is_htmx_partial, redirect_after_post, render

router = APIRouter()


def install(app: FastAPI, fleet: Any) -> None:
    """Serve the demo control on `app` for `fleet` (a `lifeline_demo.fleet.DemoFleet`)."""
    app.state.demo_fleet = fleet
    app.include_router(router)


def _fleet(request: Request) -> Any:
    fleet = getattr(request.app.state, "demo_fleet", None)
    if fleet is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "the demo control exists only under `lifeline demo`")
    return fleet


def _rows(fleet: Any) -> list[dict[str, Any]]:
    rows = []
    for outpost in fleet.outposts:
        sim = fleet.clusters.get(outpost.cluster) if outpost.cluster else None
        rows.append(
            {
                "outpost_id": outpost.outpost_id,
                "name": outpost.name,
                "region": outpost.region,
                "cluster": outpost.cluster,
                "endpoint": sim.url if sim else None,
                "connected": fleet.is_connected(outpost.outpost_id),
            }
        )
    return rows


@router.get("/demo", name="demo.index")
def demo_index(request: Request, principal: Responder) -> Response:
    """The outage rehearsal page: every demo Outpost with its link state and a switch."""
    fleet = _fleet(request)
    return render(
        request, "demo/index.html", {"rows": _rows(fleet), "principal": principal}, partial="demo/_table.html"
    )


@router.post("/demo/outposts/{outpost_id}", name="demo.switch")
def demo_switch(
    request: Request,
    outpost_id: str,
    principal: Responder,
    action: Annotated[str, Form()],
) -> Response:
    """Disconnect or reconnect one simulated Outpost."""
    fleet = _fleet(request)
    if action not in ("connect", "disconnect"):
        raise HTTPException(422, "action must be connect or disconnect")
    try:
        fleet.set_connected(outpost_id, action == "connect")
    except KeyError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no demo Outpost {outpost_id}") from None
    if is_htmx_partial(request):
        return render(request, "demo/_table.html", {"rows": _rows(fleet), "principal": principal})
    return RedirectResponse(str(request.url_for("demo.index")), status_code=status.HTTP_303_SEE_OTHER)


@router.post("/demo/outposts/{outpost_id}/drill", name="demo.drill")
def demo_drill(
    request: Request,
    tasks: BackgroundTasks,
    outpost_id: str,
    principal: Responder,
    db: DbSession,
    settings: AppSettings,
) -> Response:
    """The outage switch as a drill: cut the simulated service link, start a drill on the Outpost and
    open its live page (the first check round runs right after the response)."""
    fleet = _fleet(request)
    try:
        fleet.set_connected(outpost_id, False)
    except KeyError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no demo Outpost {outpost_id}") from None
    actor, now = actor_of(principal, request), now_utc(request)
    drill = lifecycle.running_drill_for(db, outpost_id)
    if drill is None:
        drill = lifecycle.plan_drill(
            db,
            outpost_id=outpost_id,
            title="Demo: service link cut",
            planned_start=now,
            duration_minutes=30,
            actor=actor,
            now=now,
        )
        lifecycle.start_drill(db, drill, actor, now)
    tasks.add_task(_first_round, settings, request.app.state.session_factory, drill.id)
    return redirect_after_post(request, str(request.url_for("drills.detail", drill_id=drill.id)))


def _first_round(settings: Any, factory: Any, drill_id: int) -> None:
    try:
        runner.run_round(settings, factory, drill_id)
    except Exception:  # a background task: logged, never raised into the server
        logging.getLogger(__name__).exception("demo drill %s: check round crashed", drill_id)
