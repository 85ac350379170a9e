"""The Dash page: seven panels that refresh every `refresh_s`, built on OpsBackend.

Dash serves its scripts and styles from the installed package (serve_locally), so the
page works on a machine with no internet. The callbacks are async and push the blocking
reads (HTTP to the service, SQL) to a thread, so one slow read never stalls the server.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import dash
import plotly.graph_objects as go
from dash import ALL, Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate
from fastapi import FastAPI
from plotly.subplots import make_subplots

from ui.backend import OpsBackend
from ui.health import health_figure

TITLE = "zenloop operations"
HISTORY_LIMIT = 200  # checks drawn in the history plot
RETRAINS_SHOWN = 20
TRAFFIC_POINTS = 240
DECISION_STYLE = {  # marker colour and symbol per decision
    "no drift": ("#2e7d32", "circle"),
    "drift": ("#ef6c00", "diamond"),
    "retrain": ("#c62828", "star"),
    "not counted": ("#9e9e9e", "circle-open"),  # too few rows, or the same rows again
}
GRAPH_HEIGHT = 320
NUMERIC_ROLE = "numeric"
DATETIME_ROLE = "datetime"
STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; background: #f5f6f8; color: #222; }
header { background: #263238; color: #fff; padding: 10px 20px; display: flex;
         align-items: baseline; gap: 24px; }
header h1 { font-size: 20px; margin: 0; }
header a { color: #80cbc4; margin-right: 14px; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 14px; padding: 14px; }
.panel { background: #fff; border-radius: 6px; padding: 10px 14px;
         box-shadow: 0 1px 3px rgba(0,0,0,.12); overflow-x: auto; }
.panel h2 { font-size: 16px; margin: 4px 0 8px; }
.wide { grid-column: 1 / span 2; }
table { border-collapse: collapse; font-size: 13px; width: 100%; }
th, td { border-bottom: 1px solid #e0e0e0; padding: 3px 6px; text-align: left; }
tr.drifted td { background: #ffebee; }
.muted { color: #777; font-size: 12px; }
.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; font-size: 13px; }
.form { display: grid; grid-template-columns: repeat(4, 1fr); gap: 6px 10px; font-size: 12px; }
.form input { width: 95%; }
.result { font-family: monospace; font-size: 13px; margin-top: 8px; white-space: pre-wrap; }
.error { color: #c62828; }
"""
INDEX = (
    "<!DOCTYPE html><html><head>{%metas%}<title>{%title%}</title>{%favicon%}{%css%}"
    f"<style>{STYLE}</style></head><body>{{%app_entry%}}<footer>{{%config%}}{{%scripts%}}"
    "{%renderer%}</footer></body></html>"
)


def _when(timestamp: float | str | None) -> str:
    if timestamp is None:
        return "-"
    if isinstance(timestamp, str):
        return timestamp.replace("T", " ")[:19]
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _number(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def _table(header: list[str], rows: list[list[Any]], row_class: list[str] | None = None, **kw):
    classes = row_class or [""] * len(rows)
    return html.Table(
        [
            html.Thead(html.Tr([html.Th(h) for h in header])),
            html.Tbody(
                [
                    html.Tr([html.Td(c) for c in row], className=cls)
                    for row, cls in zip(rows, classes, strict=True)
                ]
            ),
        ],
        **kw,
    )


# -- panels -------------------------------------------------------------------------------
def model_panel(summary: dict[str, Any]) -> list:
    model = summary["model"]
    if model is None:
        return [html.P(f"service not ready: {summary['service']['error']}", className="error")]
    metrics = model["training_metrics"].get("test") or {}
    time_column = model.get("time_column")
    validated = (
        f"out-of-time on {time_column!r}: tested on its latest rows"
        if time_column
        else "random split (no time column): the test figures may flatter it"
    )
    leaks = model.get("leaks") or "; ".join(model.get("suspected_leaks") or []) or "none"
    facts = [
        ("name", model["name"]),
        ("version", html.Span(f"v{model['version']}", id="served-version")),
        ("alias", model["alias"] or "pinned"),
        ("family", model.get("family") or "-"),
        ("task", f"{model['task']} of {model['target']}"),
        ("judged by", model.get("metric") or "-"),
        ("validated", validated),
        ("suspected leaks", html.Span(leaks, id="suspected-leaks")),
        ("live since", _when(model["loaded_at"])),
        ("test metrics", ", ".join(f"{k} {_number(v)}" for k, v in sorted(metrics.items()))),
    ]
    versions = [
        [
            f"v{v['version']}",
            ", ".join(v["aliases"]) or "-",
            v["stage"] or "-",
            _when(v["created_at"]),
            "serving" if v["serving"] else "",
        ]
        for v in summary["versions"]
    ]
    return [
        html.Div([item for k, v in facts for item in (html.B(k), html.Span(v))], className="kv"),
        html.H2("Registered versions"),
        _table(["version", "aliases", "stage", "registered", ""], versions, id="versions-table"),
    ]


def traffic_figure(traffic: dict[str, Any]) -> go.Figure:
    samples = traffic["samples"]
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    times = [datetime.fromtimestamp(s["at"], UTC) for s in samples]
    figure.add_scatter(
        x=times, y=[s["requests_per_s"] for s in samples], name="requests/s", mode="lines"
    )
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        figure.add_scatter(
            x=times,
            y=[s[key] for s in samples],
            name=key.replace("_ms", " ms"),
            mode="lines+markers",  # one busy interval alone is still a visible point
            line={"dash": "dot"},
            secondary_y=True,
        )
    figure.update_yaxes(title_text="requests/s", secondary_y=False, rangemode="tozero")
    figure.update_yaxes(title_text="latency ms", secondary_y=True, rangemode="tozero")
    figure.update_layout(height=GRAPH_HEIGHT, margin={"t": 10, "b": 30, "l": 50, "r": 50})
    return figure


def traffic_facts(traffic: dict[str, Any]) -> list:
    totals = traffic["totals"]
    if totals is None:
        note = traffic["sampler_error"] or "waiting for the first /metrics sample"
        return [html.P(note, className="muted")]
    log = totals["log"]
    logged = sum(m["predictions"] for m in traffic["logged_per_minute"])
    facts = [
        ("prediction requests", totals["prediction_requests"]),
        ("4xx / 5xx", f"{totals['client_errors']} / {totals['server_errors']}"),
        ("log backlog", int(log.get("pending_rows", 0))),
        (
            "log written / refused / spilled",
            "{:.0f} / {:.0f} / {:.0f}".format(
                log.get("written_rows", 0), log.get("refused_rows", 0), log.get("spilled_rows", 0)
            ),
        ),
        ("logged in the last hour", logged),
    ]
    return [html.Div([i for k, v in facts for i in (html.B(k), html.Span(v))], className="kv")]


def drift_panel(drift: dict[str, Any]) -> list:
    check = drift["check"]
    if check is None:
        return [html.P("no drift check recorded yet", className="muted", id="drift-table")]
    columns = check["columns"]
    rows = [
        [c["column"], c["kind"], c["method"], f"{c['score']:.4f}", c["threshold"],
         "DRIFT" if c["drifted"] else "ok"]
        for c in columns
    ]  # fmt: skip
    return [
        html.P(
            f"check #{check['id']} at {_when(check['checked_at'])} on v{check['model_version']}"
            f" ({check['window_rows']} rows): {check['decision'].upper()} - {check['reason']}",
            className="muted",
        ),
        _table(
            ["column", "kind", "method", "score", "threshold", "verdict"],
            rows,
            ["drifted" if c["drifted"] else "" for c in columns],
            id="drift-table",
        ),
    ]


def history_figure(checks: list[dict[str, Any]], retrains: list[dict[str, Any]]) -> go.Figure:
    """Drifted share per check (oldest first), markers by decision, retrains as lines."""
    figure = go.Figure()
    times = [datetime.fromtimestamp(c["checked_at"], UTC) for c in checks]
    figure.add_scatter(
        x=times,
        y=[c["drifted_share"] for c in checks],
        mode="lines",
        line={"color": "#90a4ae"},
        name="drifted share",
        showlegend=False,
    )
    for decision, (color, symbol) in DECISION_STYLE.items():
        chosen = [c for c in checks if c["decision"] == decision]
        figure.add_scatter(
            x=[datetime.fromtimestamp(c["checked_at"], UTC) for c in chosen],
            y=[c["drifted_share"] for c in chosen],
            mode="markers",
            marker={"color": color, "symbol": symbol, "size": 11},
            name=decision,
            text=[f"v{c['model_version']}: {c['reason']}" for c in chosen],
        )
    for retrain in retrains:
        if retrain["deployed_version"] and retrain["finished_at"]:
            when = datetime.fromtimestamp(retrain["finished_at"], UTC)
            figure.add_vline(x=when, line={"color": "#1565c0", "dash": "dash"})
            figure.add_annotation(
                x=when, y=1, yref="paper", text=f"v{retrain['deployed_version']} live",
                showarrow=False, xanchor="left", font={"color": "#1565c0"},
            )  # fmt: skip
    figure.update_yaxes(title_text="drifted share of columns", range=[0, 1.05])
    figure.update_layout(height=GRAPH_HEIGHT, margin={"t": 10, "b": 30, "l": 50, "r": 10})
    return figure


def alerts_panel(alerts: list[str]) -> list:
    """What a person should act on now: a champion behind a naive baseline, a rollback."""
    return [html.P(f"ALERT: {alert}", className="error") for alert in alerts]


def _judgement(r: dict[str, Any]) -> str:
    """The newest held-out labelled rows: champion -> retrained, beside the naive baseline."""
    if not r["error_metric"]:
        return "-"
    baseline = f"; naive {_number(r['error_baseline'])}" if r["error_baseline"] is not None else ""
    return (
        f"{r['error_metric']}: {_number(r['error_before'])} -> {_number(r['error_after'])}"
        f" on {r['error_rows']} rows{baseline}"
    )


def _later(r: dict[str, Any]) -> str:
    """The replaced and the new version on the same labelled rows after the promotion."""
    if not r["later_rows"]:
        return r["review"] or "-"
    baseline = f"; naive {_number(r['later_baseline'])}" if r["later_baseline"] is not None else ""
    return (
        f"v{r['replaced_version']} {_number(r['later_before'])} -> v{r['deployed_version']} "
        f"{_number(r['later_after'])} on {r['later_rows']} rows{baseline}: "
        f"{(r['review'] or '').split(':')[0]}"
    )


def _history(r: dict[str, Any]) -> str:
    scores = ", ".join(f"{k} {_number(v)}" for k, v in r["history_scores"].items())
    return f"{r['history']} ({scores})" if scores else (r["history"] or "-")


def retrain_panel(retrains: list[dict[str, Any]]) -> list:
    if not retrains:
        return [html.P("no retraining recorded yet", className="muted", id="retrain-table")]
    rows = []
    for r in retrains:
        trigger = r["trigger"] or {}
        onset = r["onset_to_serving_s"]
        rows.append(
            [
                _when(r["started_at"]),
                trigger.get("drift_reason") or trigger.get("reason") or "-",
                r["outcome"],
                r["summary"] or "",
                _history(r),
                _judgement(r),
                _later(r),
                "-" if onset is None else f"{onset:.0f} s",
            ]
        )
    header = [
        "started",
        "trigger",
        "outcome",
        "summary",
        "history learned from (backtest)",
        "champion -> retrained (newest held-out rows)",
        "replaced -> new (same later rows): review",
        "drift onset->live",
    ]
    return [_table(header, rows, id="retrain-table")]


def prediction_form(model: dict[str, Any] | None, defaults: dict[str, Any]) -> list:
    if model is None:
        return [html.P("no model is served", className="muted")]
    fields = []
    for column in model["feature_schema"]:
        name = column["name"]
        numeric = column["role"] == NUMERIC_ROLE
        value = defaults.get(name)
        fields.append(
            html.Label(
                [
                    f"{name}{' *' if column['required'] else ''}",
                    html.Br(),
                    dcc.Input(
                        id={"type": "feature", "name": name},
                        type="number" if numeric else "text",
                        value=value,
                        debounce=False,
                    ),
                ]
            )
        )
    return [html.Div(fields, className="form")]


def prediction_result(status: int, body: dict[str, Any]) -> list:
    if status != 200:
        return [html.Div(f"{status or 'no answer'}: {body.get('detail')}", className="error")]
    lines = [f"prediction: {body['prediction']}", f"model version: v{body['model_version']}"]
    for label, probability in (body.get("probabilities") or {}).items():
        lines.append(f"P({label}) = {probability:.3f}")
    lines.append(f"request id: {body['request_id']}")
    return [html.Div("\n".join(lines), id="prediction-output")]


def links_bar(links: dict[str, str | None]) -> list:
    items = []
    for label, key in (("MLflow UI", "mlflow_ui"), ("ZenML dashboard", "zenml_dashboard")):
        url = links.get(key)
        items.append(html.A(label, href=url, target="_blank") if url else None)
    items.append(html.A("service API docs", href=links["service_docs"], target="_blank"))
    items.append(html.A("page API", href="/api/openapi.json", target="_blank"))
    stack = links.get("stack")
    items.append(html.Span(f"stack: {stack}" if stack else "", className="muted"))
    return [i for i in items if i is not None]


# -- the page -----------------------------------------------------------------------------
def build_page(server: FastAPI, backend: OpsBackend) -> dash.Dash:
    app = dash.Dash(__name__, server=server, title=TITLE, serve_locally=True, index_string=INDEX)
    refresh_ms = int(backend.config.refresh_s * 1000)
    app.layout = html.Div(
        [
            html.Header([html.H1(TITLE), html.Nav(id="links"), html.Span(id="updated")]),
            html.Div(id="alerts"),
            dcc.Interval(id="tick", interval=refresh_ms),
            dcc.Store(id="form-version"),
            dcc.Store(id="served-model"),
            html.Div(
                [
                    html.Section(
                        [html.H2("Served model"), html.Div(id="model")], className="panel"
                    ),
                    html.Section(
                        [html.H2("Traffic"), dcc.Graph(id="traffic-graph"), html.Div(id="traffic")],
                        className="panel",
                    ),
                    html.Section([html.H2("Drift: latest check"), html.Div(id="drift")],
                                 className="panel"),
                    html.Section(
                        [html.H2("Drift checks over time"), dcc.Graph(id="history-graph")],
                        className="panel",
                    ),
                    html.Section([html.H2("Retrainings"), html.Div(id="retrains")],
                                 className="panel wide"),
                    html.Section(
                        [html.H2("Loop health: the primary metric on labelled traffic"),
                         dcc.Graph(id="health-graph")],
                        className="panel wide",
                    ),
                    html.Section(
                        [html.H2("Try a prediction"), html.Div(id="form"),
                         # in the layout from the start (a callback's input must be), and
                         # disabled while no model is served
                         html.Button("Predict", id="predict-button", n_clicks=0,
                                     disabled=True),
                         html.Span(" one row to the service's /predict (* required)",
                                   className="muted"),
                         html.Div(id="prediction", className="result")],
                        className="panel wide",
                    ),
                ],
                className="grid",
            ),
        ]
    )  # fmt: skip

    @app.callback(
        Output("links", "children"),
        Output("updated", "children"),
        Output("alerts", "children"),
        Output("model", "children"),
        Output("traffic-graph", "figure"),
        Output("traffic", "children"),
        Output("drift", "children"),
        Output("history-graph", "figure"),
        Output("health-graph", "figure"),
        Output("retrains", "children"),
        Output("served-model", "data"),
        Input("tick", "n_intervals"),
        # no new tick while a refresh runs: a refresh slower than the interval would
        # otherwise be superseded every time and the page would never fill
        running=[(Output("tick", "disabled"), True, False)],
    )
    async def refresh(_n: int | None):
        summary, traffic, drift, history = await asyncio.gather(
            asyncio.to_thread(backend.summary),
            asyncio.to_thread(backend.traffic, TRAFFIC_POINTS),
            asyncio.to_thread(backend.drift),
            asyncio.to_thread(backend.history, HISTORY_LIMIT, "oldest"),
        )
        retrains = list(reversed(history["retrains"]))[:RETRAINS_SHOWN]
        return (
            links_bar(summary["links"]),
            f"updated {_when(time.time())}",
            alerts_panel(summary["alerts"]),
            model_panel(summary),
            traffic_figure(traffic),
            traffic_facts(traffic),
            drift_panel(drift),
            history_figure(history["checks"], history["retrains"]),
            health_figure(history["checks"], history["retrains"]),
            retrain_panel(retrains),
            summary["model"],
        )

    @app.callback(
        Output("form", "children"),
        Output("form-version", "data"),
        Output("predict-button", "disabled"),
        Input("served-model", "data"),
        State("form-version", "data"),
    )
    async def form(model: dict[str, Any] | None, shown: str | None):
        """Rebuilt only when the served version changes, so typing is never undone."""
        version = model["version"] if model else None
        if version == shown and shown is not None:
            return dash.no_update, dash.no_update, dash.no_update
        defaults = await asyncio.to_thread(backend.form_defaults)
        return prediction_form(model, defaults), version, model is None

    @app.callback(
        Output("prediction", "children"),
        Input("predict-button", "n_clicks"),
        State({"type": "feature", "name": ALL}, "value"),
        State({"type": "feature", "name": ALL}, "id"),
        prevent_initial_call=True,
    )
    async def predict(clicks: int, values: list[Any], ids: list[dict[str, str]]):
        """Only on a click: Dash also calls it when the form is (re)built."""
        if not clicks:
            raise PreventUpdate
        row = {i["name"]: v for i, v in zip(ids, values, strict=True) if v not in (None, "")}
        status, body = await asyncio.to_thread(backend.predict, row)
        return prediction_result(status, body)

    return app
