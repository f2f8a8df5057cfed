"""Light and dark themes: the widgets' stylesheet (resources/styles/*.qss) and the canvas colours."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QColor

STYLES = Path(__file__).resolve().parents[1] / "resources" / "styles"

# Header colour per palette group, so a model's structure reads at a glance.
_GROUP_COLORS = {
    "Inputs": "#3f8f5f", "Core": "#3d6fb4", "Recurrent": "#8a55b5", "Convolution": "#c07a2c", "Pooling": "#b5883a",
    "Merging": "#2f8f8f", "Normalization": "#6b7d2e", "Regularization": "#8f5f5f", "Reshaping": "#5f6f8f",
    "Wrappers": "#a0507a", "Custom": "#6f6f6f",
}


class Theme:
    def __init__(self, name: str = "light"):
        self.name = name
        dark = name == "dark"
        c = QColor
        self.canvas = c("#1e2127") if dark else c("#f4f5f7")
        self.grid = c("#2a2e36") if dark else c("#e4e6ea")
        self.node_fill = c("#2c313a") if dark else c("#ffffff")
        self.node_error_fill = c("#4a2a2d") if dark else c("#fde8e8")
        self.node_border = c("#5c6370") if dark else c("#9aa0aa")
        self.header_text = c("#ffffff")
        self.text = c("#dfe3ea") if dark else c("#1f2430")
        self.text_dim = c("#a8b0bd") if dark else c("#5b6270")
        self.selection = c("#f0b429")
        self.error = c("#e5484d")
        self.ok = c("#30a46c")
        self.wire = c("#8b95a5") if dark else c("#6b7585")
        self.mask_wire = c("#e07b39")
        self.label_fill = c("#2c313a") if dark else c("#ffffff")
        self.tensor_port = c("#5aa0f0")
        self.mask_port = c("#e07b39")
        self.state_port = c("#b07be0")

    def group_color(self, group: str) -> QColor:
        return QColor(_GROUP_COLORS.get(group, _GROUP_COLORS["Custom"]))

    def stylesheet(self) -> str:
        path = STYLES / f"{self.name}.qss"
        return path.read_text(encoding="utf-8") if path.exists() else ""
