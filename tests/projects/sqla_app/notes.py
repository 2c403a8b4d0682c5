"""A tiny SQLAlchemy application: it writes and reads notes, and never changes the schema."""

import os

from sqlalchemy import BigInteger, Identity, Text, create_engine, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "note"
    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    body: Mapped[str] = mapped_column(Text)


def engine_from_env() -> Engine:
    """The application's engine, from DATABASE_URL as deployed."""
    return create_engine(os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1))


def add(session: Session, body: str) -> int:
    note = Note(body=body)
    session.add(note)
    session.flush()
    return note.id


def bodies(session: Session) -> list[str]:
    return list(session.scalars(select(Note.body).order_by(Note.id)))
