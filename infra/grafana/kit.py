"""Small helpers over grafana-foundation-sdk so each dashboard module reads as a list of figures.

Every panel goes to the one provisioned Prometheus data source (uid ``prometheus``, see
``provisioning/datasources``). Panels are placed in a 24-column grid in the order they are added,
so a dashboard module never computes coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableOption, VariableRefresh

DATASOURCE = DataSourceRef(type_val="prometheus", uid="prometheus")
MODEL = 'model=~"$model"'
VERSION = 'version=~"$version"'
NOT_STAGING = 'model!~".*__staging"'
"""Leaves out the deployer's latency-probe models (``<model>__staging``, ``STAGING_SUFFIX`` of
``services/deployer/gate.py``): Triton lists them in its per-model series like any served model,
so every query on Triton's own series (``nv_*``) carries this matcher."""


def query(expr: str, legend: str = "", ref: str = "A") -> prometheus.Dataquery:
    q = prometheus.Dataquery().expr(expr).ref_id(ref)
    return q.legend_format(legend) if legend else q


@dataclass
class Grid:
    """Lays panels left to right, wrapping at 24 columns; rows start a new line."""

    panels: list = field(default_factory=list)
    x: int = 0
    y: int = 0
    line_height: int = 0
    next_id: int = 1

    def _place(self, builder, width: int, height: int):
        if self.x + width > 24:
            self.x, self.y = 0, self.y + self.line_height
            self.line_height = 0
        from grafana_foundation_sdk.models.dashboard import GridPos

        builder.grid_pos(GridPos(h=height, w=width, x=self.x, y=self.y)).id(self.next_id)
        self.next_id += 1
        self.x += width
        self.line_height = max(self.line_height, height)
        self.panels.append(builder)
        return builder

    def row(self, title: str) -> None:
        if self.x:
            self.x, self.y, self.line_height = 0, self.y + self.line_height, 0
        self._place(dashboard.Row(title), 24, 1)
        self.x, self.y, self.line_height = 0, self.y + 1, 0

    def series(self, title: str, targets: list[prometheus.Dataquery], unit: str = "short", description: str = "",
               width: int = 12, height: int = 8, min_val: float | None = None, max_val: float | None = None) -> None:
        """A time series panel; ``targets`` get ref ids A, B, C... in order."""
        panel = timeseries.Panel().title(title).datasource(DATASOURCE).unit(unit).line_width(1).fill_opacity(10)
        if description:
            panel.description(description)
        if min_val is not None:
            panel.min(min_val)
        if max_val is not None:
            panel.max(max_val)
        for i, target in enumerate(targets):
            panel.with_target(target.ref_id(chr(ord("A") + i)))
        self._place(panel, width, height)

    def stat(self, title: str, expr: str, legend: str = "", unit: str = "short", description: str = "",
             width: int = 6, height: int = 4) -> None:
        """A single-figure panel read as an instant query (the latest value)."""
        panel = stat.Panel().title(title).datasource(DATASOURCE).unit(unit)
        if description:
            panel.description(description)
        panel.with_target(query(expr, legend).instant())
        self._place(panel, width, height)


def model_variables(metric: str = "nv_inference_count") -> list[dashboard.QueryVariable]:
    """``$model`` and ``$version``, read from Triton's per-model series (every served model has them,
    the gate's staging models excluded)."""
    everything = VariableOption(selected=True, text="All", value="$__all")

    def var(name: str, label: str, q: str) -> dashboard.QueryVariable:
        return (
            dashboard.QueryVariable(name).label(label).query(q).datasource(DATASOURCE)
            .multi(True).include_all(True).all_value(".*").current(everything)
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        )

    return [
        var("model", "Model", f"label_values({metric}{{{NOT_STAGING}}}, model)"),
        var("version", "Version", f'label_values({metric}{{{MODEL}, {NOT_STAGING}}}, version)'),
    ]


def event_annotation(name: str, counter: str, color: str, by: str = "model", selector: str = MODEL) -> dashboard.AnnotationQuery:
    """An annotation at each step where ``counter`` grew in the last minute (first events included)."""
    sel = f"{counter}{{{selector}}}"
    expr = f"sum by ({by}) (({sel} unless {sel} offset 1m) or increase({sel}[1m])) > 0"
    return dashboard.AnnotationQuery().name(name).datasource(DATASOURCE).enable(True).icon_color(color).expr(expr)


def build(title: str, uid: str, description: str, grid: Grid, variables: list | None = None,
          annotations: list | None = None) -> dashboard.Dashboard:
    board = (
        dashboard.Dashboard(title).uid(uid).description(description).tags(["modelci"])
        .refresh("10s").time("now-1h", "now").timezone("browser").editable()
    )
    for variable in variables or []:
        board.with_variable(variable)
    for annotation in annotations or []:
        board.annotation(annotation)
    for panel in grid.panels:
        if isinstance(panel, dashboard.Row):
            board.with_row(panel)
        else:
            board.with_panel(panel)
    return board
