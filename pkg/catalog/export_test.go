package catalog

// MigrationSQL is the SQL of the embedded migrations before version
// (exclusive), oldest first, keyed for the tests that build an older schema.
func MigrationSQL(before int) ([]int, []string, error) {
	ms, err := migrations()
	if err != nil {
		return nil, nil, err
	}
	var versions []int
	var sqls []string
	for _, m := range ms {
		if m.version < before {
			versions, sqls = append(versions, m.version), append(sqls, m.sql)
		}
	}
	return versions, sqls, nil
}
