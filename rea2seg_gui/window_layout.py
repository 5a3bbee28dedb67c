"""The window's layout on small and scaled screens: the Inspector's tabs scroll instead of
forcing their size on the window, combo boxes in docks shrink, the side docks give way so the
canvas keeps a usable width, and the window's saved or default geometry is clamped to the
screen it opens on (``QT_SCALE_FACTOR=2`` on a 1920 × 1080 screen leaves 960 × 540 logical
pixels)."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6 import QtCore, QtGui, QtWidgets

MIN_CANVAS_W = 440
"""The canvas's smallest width (logical px) the side docks leave it, when the window is wide
enough for that (not from the paper)."""
MIN_CANVAS_H = 320
"""The central widget's smallest height the bottom docks leave it (not from the paper)."""
CANVAS_SHARE = 0.42
"""On smaller windows, the share of the window's width (height) the canvas keeps (not from the
paper)."""
DOCK_MIN_W = 220
"""The narrowest a side dock gets (logical px); its content scrolls below its own minimum."""
DOCK_MIN_H = 110
"""The lowest a bottom dock gets (logical px); its content scrolls below its own minimum."""
COMBO_MIN_CHARS = 6
"""Combo boxes in docks shrink to about this many characters when room is short (the full
text is in the popup)."""


def clamp_rect(rect: QtCore.QRect, available: QtCore.QRect) -> QtCore.QRect:
    """``rect`` moved and shrunk to lie inside ``available`` (both in logical pixels)."""
    w = min(rect.width(), available.width())
    h = min(rect.height(), available.height())
    x = min(max(rect.x(), available.left()), available.left() + available.width() - w)
    y = min(max(rect.y(), available.top()), available.top() + available.height() - h)
    return QtCore.QRect(x, y, w, h)


def scrolled(widget: QtWidgets.QWidget) -> QtWidgets.QScrollArea:
    """``widget`` in a frameless scroll area that resizes it: shown whole when there is room,
    scrolled (never squeezed below its minimum size) when there is not."""
    area = QtWidgets.QScrollArea()
    area.setObjectName(f"scroll_{widget.objectName() or type(widget).__name__}")
    area.setWidgetResizable(True)
    area.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
    area.setWidget(widget)
    return area


def fit_to_screen(window: QtWidgets.QWidget, screen: QtGui.QScreen | None = None) -> QtCore.QRect:
    """Clamp ``window``'s frame (its title bar and borders included) to the available geometry
    of ``screen`` (default: the screen under the window's centre, else the primary one); the
    window is never larger than that. Returns the new frame rectangle."""
    screen = (
        screen
        or QtGui.QGuiApplication.screenAt(window.geometry().center())
        or window.screen()
        or QtGui.QGuiApplication.primaryScreen()
    )
    avail = screen.availableGeometry()
    frame, geo = window.frameGeometry(), window.geometry()
    extra_w, extra_h = frame.width() - geo.width(), frame.height() - geo.height()
    target = clamp_rect(frame, avail)
    window.setMinimumSize(
        min(window.minimumWidth(), avail.width() - extra_w),
        min(window.minimumHeight(), avail.height() - extra_h),
    )
    window.resize(max(1, target.width() - extra_w), max(1, target.height() - extra_h))
    window.move(target.topLeft())
    return target


class ScreenClamp(QtCore.QObject):
    """Calls :func:`fit_to_screen` on ``window`` now and once more when it is first shown (only
    then are its frame's margins known)."""

    def __init__(self, window: QtWidgets.QWidget) -> None:
        super().__init__(window)
        self.window = window
        fit_to_screen(window)
        window.installEventFilter(self)

    def eventFilter(self, obj: QtCore.QObject, ev: QtCore.QEvent) -> bool:  # noqa: N802 - Qt API
        if obj is self.window and ev.type() == QtCore.QEvent.Type.Show:
            self.window.removeEventFilter(self)
            QtCore.QTimer.singleShot(0, lambda: fit_to_screen(self.window))
        return False


class ScrollingTabs(QtWidgets.QTabWidget):
    """A tab widget whose pages scroll: each page sits in a :class:`QtWidgets.QScrollArea`, so
    a tall or wide panel never sets the minimum size of the dock (and the window) it is in.
    :meth:`widget`, :meth:`currentWidget`, :meth:`setCurrentWidget` and :meth:`indexOf` speak of
    the panels, not of their scroll areas."""

    def addTab(self, widget: QtWidgets.QWidget, title: str) -> int:  # type: ignore[override]  # noqa: N802 - Qt API
        return super().addTab(scrolled(widget), title)

    def page(self, index: int) -> QtWidgets.QScrollArea | None:
        """The scroll area of tab ``index``."""
        return super().widget(index)  # type: ignore[return-value]

    def widget(self, index: int) -> QtWidgets.QWidget | None:  # type: ignore[override]
        area = super().widget(index)
        return area.widget() if isinstance(area, QtWidgets.QScrollArea) else area

    def currentWidget(self) -> QtWidgets.QWidget | None:  # type: ignore[override]  # noqa: N802
        return self.widget(self.currentIndex())

    def indexOf(self, widget: QtWidgets.QWidget) -> int:  # type: ignore[override]  # noqa: N802
        for i in range(self.count()):
            if self.widget(i) is widget or super().widget(i) is widget:
                return i
        return -1

    def setCurrentWidget(self, widget: QtWidgets.QWidget) -> None:  # type: ignore[override]  # noqa: N802
        i = self.indexOf(widget)
        if i < 0:
            raise LookupError(f"{type(widget).__name__} is not a page of these tabs")
        self.setCurrentIndex(i)


def compact_combos(widget: QtWidgets.QWidget, chars: int = COMBO_MIN_CHARS) -> None:
    """Let every combo box under ``widget`` shrink to about ``chars`` characters when room is
    short (its popup still shows the whole text); with room, it keeps its full width."""
    for combo in widget.findChildren(QtWidgets.QComboBox):
        # an explicit minimum width wins over the hint of the longest item
        arrow = combo.style().pixelMetric(QtWidgets.QStyle.PixelMetric.PM_ScrollBarExtent)
        combo.setMinimumWidth(chars * combo.fontMetrics().averageCharWidth() + arrow + 12)


class CanvasGuard(QtCore.QObject):
    """Keeps the central widget of ``window`` usable: when a resize leaves it narrower (lower)
    than :func:`canvas_target` allows, the visible, docked ``side`` (``bottom``) docks are
    narrowed (lowered) in proportion to their room, down to :data:`DOCK_MIN_W`
    (:data:`DOCK_MIN_H`)."""

    def __init__(
        self,
        window: QtWidgets.QMainWindow,
        side: Sequence[QtWidgets.QDockWidget],
        bottom: Sequence[QtWidgets.QDockWidget] = (),
    ) -> None:
        super().__init__(window)
        self.window, self.side, self.bottom = window, list(side), list(bottom)
        for d in self.side:
            d.setMinimumWidth(DOCK_MIN_W)
        for d in self.bottom:
            d.setMinimumHeight(DOCK_MIN_H)
        self._grown = False
        window.installEventFilter(self)

    def eventFilter(self, obj: QtCore.QObject, ev: QtCore.QEvent) -> bool:  # noqa: N802 - Qt API
        if obj is self.window and ev.type() in (QtCore.QEvent.Type.Resize, QtCore.QEvent.Type.Show):
            QtCore.QTimer.singleShot(0, self.fit)  # after the layout has placed the docks
        return False

    def keep_layout(self) -> None:
        """The dock sizes were restored: :meth:`grow` leaves them alone."""
        self._grown = True

    def grow(self) -> None:
        """Once, when first shown: widen the side docks toward the width their content asks
        for, as far as the canvas's target width allows (a restored layout is left alone)."""
        self._grown = True
        central = self.window.centralWidget()
        if central is None:
            return
        slack = central.width() - canvas_target(self.window.width())
        shown = [d for d in self.side if d.isVisible() and not d.isFloating()]
        want = [max(0, d.widget().sizeHint().width() - d.widget().width()) for d in shown]
        if slack <= 0 or not any(want):
            return
        scale = min(1.0, slack / sum(want))
        self.window.resizeDocks(
            shown,
            [d.width() + int(w * scale) for d, w in zip(shown, want, strict=True)],
            QtCore.Qt.Orientation.Horizontal,
        )

    def fit(self) -> None:
        """Make room for the central widget now if it is below its target size."""
        central = self.window.centralWidget()
        if central is None:
            return
        if not self._grown and self.window.isVisible():
            self.grow()
        horizontal, vertical = QtCore.Qt.Orientation.Horizontal, QtCore.Qt.Orientation.Vertical
        self._give(
            self.side,
            canvas_target(self.window.width()) - central.width(),
            DOCK_MIN_W,
            horizontal,
        )
        self._give(
            self.bottom,
            canvas_target(self.window.height(), MIN_CANVAS_H) - central.height(),
            DOCK_MIN_H,
            vertical,
        )

    def _give(
        self,
        docks: Sequence[QtWidgets.QDockWidget],
        short: int,
        least: int,
        orientation: QtCore.Qt.Orientation,
    ) -> None:
        shown = [d for d in docks if d.isVisible() and not d.isFloating()]
        if short <= 0 or not shown:
            return
        horizontal = orientation == QtCore.Qt.Orientation.Horizontal
        sizes = [d.width() if horizontal else d.height() for d in shown]
        spare = [max(0, v - least) for v in sizes]
        total = sum(spare)
        if total <= 0:
            return
        take = min(short, total)
        new = [v - round(take * s / total) for v, s in zip(sizes, spare, strict=True)]
        self.window.resizeDocks(shown, new, orientation)


def canvas_target(window_size: int, least: int = MIN_CANVAS_W) -> int:
    """The width (height) the canvas keeps in a window ``window_size`` wide (high): ``least``,
    or :data:`CANVAS_SHARE` of a window too small for that."""
    return min(least, int(CANVAS_SHARE * window_size)) if window_size > 0 else 0
