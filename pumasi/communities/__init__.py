"""Communities, membership roles, invitations, and who may do what in a community."""
