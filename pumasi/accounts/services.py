"""Write path for people: profile, language, avatar."""

from __future__ import annotations

import io

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError

from pumasi.core.errors import InvalidInput
from pumasi.platform.services import record_audit

MAX_AVATAR_BYTES = 5 * 1024 * 1024
AVATAR_FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}
AVATAR_SIDE = 512
LANGUAGES = {"ko", "en"}


def update_profile(*, user, display_name: str | None = None, language: str | None = None):
    errors: dict[str, list[str]] = {}
    changes: dict[str, list] = {}
    if display_name is not None:
        display_name = display_name.strip()
        if len(display_name) > 80:
            errors["display_name"] = [_("At most 80 characters.")]
        elif display_name != user.display_name:
            changes["display_name"] = [user.display_name, display_name]
    if language is not None:
        if language not in LANGUAGES:
            errors["language"] = [_("Choose Korean (ko) or English (en).")]
        elif language != user.language:
            changes["language"] = [user.language, language]
    if errors:
        raise InvalidInput(_("The profile was not saved."), field_errors=errors)
    if not changes:
        return user
    with transaction.atomic():
        for field, (_old, new) in changes.items():
            setattr(user, field, new)
        user.save(update_fields=list(changes))
        record_audit(actor=user, action="profile.updated", obj=user, changes=changes)
    return user


def set_avatar(*, user, upload) -> None:
    """Accept an image of at most 5 MB, re-encode it as a square-bounded PNG/JPEG without metadata."""
    size = getattr(upload, "size", None)
    if size is None or size > MAX_AVATAR_BYTES:
        raise InvalidInput(_("The avatar is too large."), field_errors={"avatar": [_("At most 5 MB.")]})
    data = upload.read()
    if len(data) > MAX_AVATAR_BYTES:
        raise InvalidInput(_("The avatar is too large."), field_errors={"avatar": [_("At most 5 MB.")]})
    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()
        image = Image.open(io.BytesIO(data))
        if image.format not in AVATAR_FORMATS:
            raise InvalidInput(_("Unsupported image type."), field_errors={"avatar": [_("Use JPEG, PNG, WebP or GIF.")]})
        if image.width * image.height > 40_000_000:
            raise InvalidInput(_("The image is too large."), field_errors={"avatar": [_("At most 40 megapixels.")]})
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidInput(
            _("That file is not an image."), field_errors={"avatar": [_("Upload a JPEG, PNG, WebP or GIF image.")]}
        ) from exc
    image.thumbnail((AVATAR_SIDE, AVATAR_SIDE))
    has_alpha = image.mode in ("RGBA", "LA", "P")
    # A fresh image from raw pixels carries no EXIF, GPS or other metadata.
    clean = Image.new("RGBA" if has_alpha else "RGB", image.size)
    clean.paste(image.convert(clean.mode))
    out = io.BytesIO()
    if has_alpha:
        clean.save(out, format="PNG", optimize=True)
        ext = "png"
    else:
        clean.save(out, format="JPEG", quality=88)
        ext = "jpg"
    with transaction.atomic():
        old = user.avatar.name if user.avatar else None
        user.avatar.save(f"{user.pk}.{ext}", ContentFile(out.getvalue()), save=False)
        user.save(update_fields=["avatar"])
        record_audit(actor=user, action="profile.avatar_changed", obj=user, changes={"avatar": [old, user.avatar.name]})
