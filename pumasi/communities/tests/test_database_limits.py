"""Values that pass validation but not the database answer 422 and write nothing, never 500."""

import json

from django.db import connection

from pumasi.platform.models import ApiToken
from pumasi.tests.factories import PASSWORD


def test_time_zone_offset_postgres_cannot_store(client, user):
    client.login(email=user.email, password=PASSWORD)
    # Python accepts offsets up to ±23:59; PostgreSQL only up to ±15:59.
    body = {"name": "far", "scopes": ["read"], "expires_at": "2999-01-28T12:44:18-23:46"}
    response = client.post("/api/v1/tokens", data=json.dumps(body), content_type="application/json")
    if connection.vendor == "postgresql":
        assert response.status_code == 422
        assert response["Content-Type"] == "application/problem+json"
        assert not ApiToken.objects.exists()
    else:
        assert response.status_code == 201
