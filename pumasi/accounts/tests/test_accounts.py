"""Sign-up, profile, language and avatar handling."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from pumasi.accounts import services
from pumasi.core.errors import InvalidInput
from pumasi.platform.models import AuditEntry
from pumasi.tests.factories import PASSWORD


def _image_bytes(fmt="JPEG", size=(800, 600), exif=True) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    out = io.BytesIO()
    if exif and fmt == "JPEG":
        exif_data = Image.Exif()
        exif_data[0x010F] = "SecretCam"  # Make
        exif_data[0x8825] = {1: "N", 2: (37.0, 27.0, 0.0)}  # GPS
        image.save(out, format=fmt, exif=exif_data)
    else:
        image.save(out, format=fmt)
    return out.getvalue()


def test_signup_with_email_and_password(db):
    client = Client()
    response = client.post("/accounts/signup/", {
        "email": "new@example.com", "password1": PASSWORD, "password2": PASSWORD,
        "display_name": "새 사람", "language": "ko",
    })
    assert response.status_code == 302
    user = get_user_model().objects.get(email="new@example.com")
    assert user.display_name == "새 사람" and user.language == "ko"
    assert AuditEntry.objects.filter(action="account.signed_up", object_id=str(user.pk)).exists()
    assert any("new@example.com" in message.to for message in mail.outbox)  # verification mail


def test_duplicate_email_is_refused(user):
    response = Client().post("/accounts/signup/", {
        "email": user.email.upper(), "password1": PASSWORD, "password2": PASSWORD,
    })
    assert response.status_code == 200
    assert get_user_model().objects.filter(email__iexact=user.email).count() == 1
    assert response.context["form"].errors.get("email")


def test_password_reset_sends_mail(user):
    response = Client().post("/accounts/password/reset/", {"email": user.email})
    assert response.status_code == 302
    assert any(user.email in message.to for message in mail.outbox)


def test_avatar_is_reencoded_and_stripped(user):
    upload = SimpleUploadedFile("me.jpg", _image_bytes(), content_type="image/jpeg")
    services.set_avatar(user=user, upload=upload)
    user.refresh_from_db()
    with Image.open(user.avatar.path) as stored:
        assert max(stored.size) <= 512
        assert not stored.getexif()
        assert "exif" not in stored.info


def test_avatar_rejects_non_images_and_big_files(user):
    with pytest.raises(InvalidInput) as info:
        services.set_avatar(user=user, upload=SimpleUploadedFile("x.png", b"not an image at all"))
    assert "avatar" in info.value.field_errors
    big = SimpleUploadedFile("big.jpg", b"\xff" * (5 * 1024 * 1024 + 1))
    with pytest.raises(InvalidInput):
        services.set_avatar(user=user, upload=big)
    user.refresh_from_db()
    assert not user.avatar


def test_profile_page_saves_and_switches_language(user):
    client = Client()
    client.login(email=user.email, password=PASSWORD)
    upload = SimpleUploadedFile("me.png", _image_bytes("PNG"), content_type="image/png")
    response = client.post("/accounts/profile/", {"display_name": "바뀐 이름", "language": "ko", "avatar": upload})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.display_name == "바뀐 이름" and user.language == "ko" and user.avatar
    page = client.get("/accounts/profile/")
    assert page["Content-Language"] == "ko"


def test_profile_page_with_bad_avatar_changes_nothing(user):
    client = Client()
    client.login(email=user.email, password=PASSWORD)
    bad = SimpleUploadedFile("me.png", b"GIF89a-but-not-really", content_type="image/png")
    response = client.post("/accounts/profile/", {"display_name": "Other", "language": "ko", "avatar": bad})
    assert response.status_code == 200
    assert response.context["form"].errors
    user.refresh_from_db()
    assert user.display_name != "Other" and user.language == "en"


def test_me_api_and_patch(api_client_for, user):
    client = api_client_for(user)
    assert client.get("/api/v1/me").json()["email"] == user.email
    response = client.patch("/api/v1/me", data=json.dumps({"language": "xx"}), content_type="application/json")
    assert response.status_code == 422 and "language" in response.json()["errors"]
    response = client.patch("/api/v1/me", data=json.dumps({"display_name": "API Name"}), content_type="application/json")
    assert response.status_code == 200 and response.json()["display_name"] == "API Name"


def test_browser_language_is_used_when_signed_out(db):
    assert Client(HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9").get("/")["Content-Language"] == "en"
    assert Client(HTTP_ACCEPT_LANGUAGE="ko-KR").get("/")["Content-Language"] == "ko"
    assert Client(HTTP_ACCEPT_LANGUAGE="fr").get("/")["Content-Language"] == "ko"
