"""The demo control (only under `lifeline demo`): flip a simulated Outpost between connected and not.

`install` adds these routes to an app made by `create_app` and puts the demo fleet in
`app.state.demo_fleet`; production apps never carry them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Form, HTTPException, Request, status
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from app.web.security import Responder
from app.web.templating import is_htmx_partial, render

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
