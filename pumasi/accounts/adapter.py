"""allauth adapter: records sign-ups in the audit log and keeps the chosen language."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter

from pumasi.platform.services import record_audit


class AccountAdapter(DefaultAccountAdapter):
    def save_user(self, request, user, form, commit=True):
        user = super().save_user(request, user, form, commit=False)
        user.display_name = form.cleaned_data.get("display_name", "") or ""
        language = form.cleaned_data.get("language") or getattr(request, "LANGUAGE_CODE", "ko")
        user.language = language if language in {"ko", "en"} else "ko"
        if commit:
            user.save()
            record_audit(actor=user, action="account.signed_up", obj=user, changes={"email": user.email})
        return user


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    """Records social sign-ups and new linked logins in the audit log."""

    def save_user(self, request, sociallogin, form=None):
        user = super().save_user(request, sociallogin, form)
        record_audit(actor=user, action="account.signed_up", obj=user,
                     changes={"email": user.email, "provider": sociallogin.account.provider})
        return user
