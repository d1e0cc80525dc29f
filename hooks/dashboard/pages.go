package dashboard

// allPages is every page of the dashboard, in navigation order. A new
// page is one line here plus its own file (see doc.go).
func (d *Dashboard) allPages() []Page {
	return []Page{
		d.groupsPage(),
		d.rolesPage(),
		d.appsPage(),
		d.usersPage(),
		d.tryLoginPage(),
		d.importExportPage(),
		d.auditPage(),
		d.signingPage(),
		d.rulesPage(),
	}
}
