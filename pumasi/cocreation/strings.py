"""Service refusals shown to people, listed so makemessages puts them in the Korean catalogue
(services raise them in English; views pass them through gettext)."""

from django.utils.translation import gettext_noop

SERVICE_MESSAGES = [
    gettext_noop("The idea was not posted."),
    gettext_noop("The comment was not posted."),
    gettext_noop("You already support this idea."),
    gettext_noop("You do not support this idea."),
    gettext_noop("This board closed; it no longer takes ideas or support."),
    gettext_noop("This idea was merged into another; support that one instead."),
    gettext_noop("The status was not changed."),
    gettext_noop("The ideas were not merged."),
    gettext_noop("Your answers were not saved."),
    gettext_noop("You have already answered this survey."),
    gettext_noop("This survey is closed."),
    gettext_noop("This survey has not opened yet."),
    gettext_noop("This invitation was already used to answer."),
    gettext_noop("This question needs an answer."),
    gettext_noop("Choose one of the options."),
    gettext_noop("Choose one or more of the options."),
    gettext_noop("Choose a whole number from 1 to 5."),
    gettext_noop("Give a number."),
    gettext_noop("The results of this survey are not shown to you."),
    gettext_noop("The document was not saved."),
    gettext_noop("The application was not sent."),
    gettext_noop("You have already applied."),
    gettext_noop("This workspace is not taking applications."),
    gettext_noop("Nobody was added."),
    gettext_noop("The milestone was not saved."),
    gettext_noop("Type something to search for."),
    gettext_noop("The search is too long."),
    gettext_noop("This field is required."),
    gettext_noop("Only the community's organisers and committee may do this."),
    gettext_noop("Observers may read but not take part."),
    gettext_noop("Your role in this workspace does not allow this."),
    gettext_noop("The cross-tab cannot be made."),
]
