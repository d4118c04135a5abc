// Package pgstore is a PostgreSQL usersessions.Backend for apps that run
// more than one instance over one database.
package pgstore

import _ "github.com/jackc/pgx/v5/pgxpool"
