from sqlalchemy import inspect

from app.extensions import db


def test_migrations_create_every_table_the_models_declare():
    tables = set(inspect(db.engine).get_table_names())
    assert set(db.metadata.tables) <= tables


def test_health_endpoint(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_unknown_api_path_returns_json_error_shape(client):
    response = client.get("/api/v1/nowhere")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_unknown_page_returns_friendly_html(client):
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert b"<h1>" in response.data and b"Traceback" not in response.data


def test_migrations_match_the_models():
    """A model change without its Alembic revision fails here, not in production."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []
