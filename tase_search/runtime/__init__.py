"""The process around the library: settings (:mod:`.config`: flag > env > file > default), index
names and paths (:mod:`.paths`), the index home (:mod:`.home`), the user cache (:mod:`.cache`), thread
counts (:mod:`.threads`), progress on stderr (:mod:`.progress`) and checks before slow work
(:mod:`.preflight`)."""
