"""Customer-area account pages. Each view parses, calls one service, renders or redirects.

Every page works on ``request.user`` only: no URL carries another account's id (ACC-10).
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from . import services
from .forms import (
    AccountPasswordResetForm,
    CreditAlertForm,
    LoginForm,
    MobileCodeForm,
    MobileNumberForm,
    ProfileForm,
    SignupForm,
)
from .selectors import mobile_certification_pending
from .tokens import ExpiredToken, InvalidToken

PROFILE_PROMPT_SESSION_KEY = "accounts_profile_prompt"


class LoginView(auth_views.LoginView):
    """Django's login, plus the profile prompt shown until the profile is complete (ACC-2)."""

    authentication_form = LoginForm

    def form_valid(self, form):
        response = super().form_valid(form)
        if self.request.user.profile_missing_fields():
            self.request.session[PROFILE_PROMPT_SESSION_KEY] = True
        return response


@require_POST
@login_required
def profile_prompt_dismiss(request):
    request.session.pop(PROFILE_PROMPT_SESSION_KEY, None)
    if request.htmx:
        return render(request, "accounts/includes/profile_prompt.html")
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "home"
    return redirect(target)


def signup(request):
    if request.user.is_authenticated:
        return redirect("home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.account_signup(
                account_id=form.cleaned_data["account_id"],
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
                consent=form.cleaned_data["consent"],
                language=getattr(request, "LANGUAGE_CODE", ""),
            )
        except services.AccountError as error:
            form.add_error(None, str(error))
        else:
            return render(request, "accounts/signup_done.html", {"email": user.email})
    return render(request, "accounts/signup.html", {"form": form})


def email_confirm(request, token):
    """Follow a confirmation link: activates the account or switches to the new address."""
    try:
        services.email_confirm(token=token)
    except ExpiredToken:
        context, status = {"outcome": "expired"}, 400
    except InvalidToken:
        context, status = {"outcome": "invalid"}, 400
    except services.AccountError as error:
        context, status = {"outcome": "used", "error": str(error)}, 400
    else:
        context, status = {"outcome": "confirmed"}, 200
    return render(request, "accounts/email_confirm.html", context, status=status)


@require_POST
@login_required
def resend_confirmation(request):
    try:
        services.email_confirmation_resend(user=request.user)
    except services.AccountError as error:
        messages.info(request, str(error))
    else:
        messages.success(request, _("We sent a new confirmation link to %(email)s.") % {"email": request.user.email})
    return redirect("accounts:profile")


@login_required
def profile(request):
    user = request.user
    form = ProfileForm(request.POST or None, instance=user, initial={"email": user.email})
    if request.method == "POST" and form.is_valid():
        try:
            email_sent = services.account_profile_update(user=user, data=form.cleaned_data)
        except services.AccountError as error:
            form.add_error("email", str(error))
        else:
            messages.success(request, _("Your information has been saved."))
            if email_sent:
                messages.info(
                    request,
                    _("Follow the link we sent to %(email)s to confirm your new address.")
                    % {"email": form.cleaned_data["email"]},
                )
            return redirect("accounts:profile")
    return render(request, "accounts/profile.html", {"form": form, "missing": user.profile_missing_fields()})


class PasswordChangeView(auth_views.PasswordChangeView):
    """Old, new and confirmation. Django keeps this session and the new password hash ends every
    other session of the account at its next request (ACC-6)."""

    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:profile")

    def form_valid(self, form):
        response = super().form_valid(form)
        services.password_changed(user=self.request.user)
        messages.success(self.request, _("Your password has been changed. Your other sessions were logged out."))
        return response


class PasswordResetView(auth_views.PasswordResetView):
    form_class = AccountPasswordResetForm
    template_name = "accounts/password_reset_form.html"
    email_template_name = "accounts/email/password_reset.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")

    def form_valid(self, form):
        self.extra_email_context = {"site_url": settings.SITE_URL, "hours": settings.PASSWORD_RESET_TIMEOUT // 3600}
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")

    def form_valid(self, form):
        response = super().form_valid(form)
        services.password_changed(user=form.user, by_reset=True)
        return response


@login_required
def mobile_certification(request):
    """Step 1: send a code to a number (ACC-3). Also shows step 2's form and the support phone (ACC-4)."""
    number_form = MobileNumberForm(request.POST or None)
    if request.method == "POST" and number_form.is_valid():
        try:
            services.mobile_certification_start(user=request.user, raw_number=number_form.cleaned_data["number"])
        except services.AccountError as error:
            number_form.add_error("number", str(error))
        else:
            messages.success(request, _("We sent a 6-digit code by SMS. Type it below."))
            return redirect("accounts:mobile")
    return _render_mobile(request, number_form=number_form, code_form=MobileCodeForm())


@require_POST
@login_required
def mobile_verify(request):
    """Step 2: check the code; on success the bonus credits are granted."""
    code_form = MobileCodeForm(request.POST)
    if code_form.is_valid():
        try:
            services.mobile_certification_verify(user=request.user, code=code_form.cleaned_data["code"])
        except services.AccountError as error:
            code_form.add_error("code", str(error))
        else:
            messages.success(
                request,
                _("Your mobile is certified: %(credits)s free credits were added to your balance.")
                % {"credits": settings.SIGNUP_BONUS_CREDITS},
            )
            return redirect("accounts:mobile")
    return _render_mobile(request, number_form=MobileNumberForm(), code_form=code_form, status=400)


def _render_mobile(request, *, number_form, code_form, status=200):
    context = {
        "number_form": number_form,
        "code_form": code_form,
        "pending": mobile_certification_pending(user=request.user),
        "support_phone": settings.SUPPORT_PHONE,
        "bonus": settings.SIGNUP_BONUS_CREDITS,
    }
    return render(request, "accounts/mobile_certify.html", context, status=status)


@login_required
def credit_alert(request):
    user = request.user
    form = CreditAlertForm(request.POST or None, initial={"threshold": user.credit_alert_threshold})
    if request.method == "POST" and form.is_valid():
        services.credit_alert_set(user=user, threshold=form.cleaned_data["threshold"])
        if form.cleaned_data["threshold"]:
            messages.success(request, _("Your credit alert is set."))
        else:
            messages.success(request, _("Your credit alert is off."))
        return redirect("accounts:credit_alert")
    return render(request, "accounts/credit_alert.html", {"form": form})
