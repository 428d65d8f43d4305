"""Small building blocks shared by the screens: page header, card frame, status banner."""

from __future__ import annotations

from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget


def page_header(title: str, text: str) -> QWidget:
    """A screen's title and one paragraph saying what to do on it."""
    w = QWidget()
    lay = QVBoxLayout(w)
    lay.setContentsMargins(0, 0, 0, 8)
    t = QLabel(title)
    t.setObjectName("pageTitle")
    s = QLabel(text)
    s.setObjectName("muted")
    s.setWordWrap(True)
    lay.addWidget(t)
    lay.addWidget(s)
    return w


class Card(QFrame):
    """A white rounded box with an optional title (styled in style.qss as #card)."""

    def __init__(self, title: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("card")
        self.body = QVBoxLayout(self)
        self.body.setContentsMargins(14, 12, 14, 12)
        self.body.setSpacing(6)
        if title:
            label = QLabel(title)
            label.setObjectName("sectionTitle")
            self.body.addWidget(label)


class Banner(QLabel):
    """A coloured message line: kind is ok | warn | error | info (styled by the `kind` property)."""

    def __init__(self, text: str = "", kind: str = "info", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setObjectName("banner")
        self.setWordWrap(True)
        self.set_message(text, kind)

    def set_message(self, text: str, kind: str = "info") -> None:
        self.setText(text)
        self.setProperty("kind", kind)
        self.style().unpolish(self)
        self.style().polish(self)
        self.setVisible(bool(text))

    @property
    def kind(self) -> str:
        return str(self.property("kind"))
