package setup

import "github.com/claimsmith/claimsmith/hooks/dashboard"

// tryLogin is the dashboard's door to the serving pipeline for dry runs:
// the reloader, so a dry run always uses the generation logins use now.
// Nil without a configuration file (no pipeline is built then).
func (s *Server) tryLogin() dashboard.DryRunner {
	if s.reloader == nil {
		return nil
	}
	return s.reloader
}
