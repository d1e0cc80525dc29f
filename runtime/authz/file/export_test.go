package file

// HoldCommits stops the committer before it takes its next batch, so a test
// can queue a known number of patches behind one commit. release lets it go.
func HoldCommits(s *Store) (release func()) {
	o := s.own.Load()
	o.j.hold.Lock()
	return o.j.hold.Unlock
}

// PendingPatches is the number of changed patches waiting for a commit.
func PendingPatches(s *Store) int { return s.own.Load().j.pending() }

// Owns reports whether s owns the profiles.
func Owns(s *Store) bool { return s.own.Load() != nil }
