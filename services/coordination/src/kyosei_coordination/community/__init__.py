"""地域課題: community issues raised from what coordinators saw across cases."""
