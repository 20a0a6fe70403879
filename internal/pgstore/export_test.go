package pgstore

// Crash makes s act as a dead instance from now on: its projector stops
// reading, saving and retrying the lock (a test then ends the lock's
// session from the database side, as a dead process's would end).
func Crash(s *Store) { s.drv.crashed.Store(true) }

// Projecting reports whether s's engine projected at its last step.
func Projecting(s *Store) bool { return !s.eng.Following() }

// Deaf makes s ignore the watermarks the instances tell (its own
// included), which otherwise drop its engine's cache before most steps:
// a test of what guards a stale cache then sees the cache used.
func Deaf(s *Store) { s.signals.deaf.Store(true) }
