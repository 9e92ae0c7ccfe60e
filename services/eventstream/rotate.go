package eventstream

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/eventstream/eventstream/pkg/catalog"
	"github.com/eventstream/eventstream/pkg/secrets"
)

// RotateSecrets is `eventstream rotate-secrets [--batch n]`: it re-encrypts
// every stored integration secret with the first key of the keyring
// (SECRETS_KEYS, or SECRETS_KEY, or the local stack's key), in batches, each
// in one transaction, and prints what it did. Running it again is harmless
// (secrets already under the first key are skipped), so an interrupted run is
// simply repeated. Secrets no key of the ring can decrypt are left as they
// are, named, and make the command exit non-zero: removing a key from the
// ring is safe only after a run that reports none.
func RotateSecrets(ctx context.Context, a adminEnv, args []string, out, stderr io.Writer) error {
	fs := flag.NewFlagSet("rotate-secrets", flag.ContinueOnError)
	fs.SetOutput(stderr)
	batch := fs.Int("batch", 100, "integrations per transaction")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || *batch <= 0 {
		fmt.Fprintln(stderr, "usage: eventstream rotate-secrets [--batch n]")
		return errUsage
	}
	keys, err := secrets.KeysFromEnv(a.getenvWithLocal())
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return errors.New("no encryption key: set SECRETS_KEYS (new key first, then the old ones) or SECRETS_KEY")
	}
	box, err := secrets.NewRing(keys)
	if err != nil {
		return err
	}
	pool, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer pool.Close()
	rep, err := catalog.New(pool, box).RotateSecrets(ctx, *batch)
	fmt.Fprintf(out, "integrations: %d; secrets re-encrypted with the first key: %d; already current: %d; unreadable: %d\n",
		rep.Integrations, rep.Rewritten, rep.Current, rep.Unreadable)
	if err != nil {
		return err
	}
	if rep.Unreadable > 0 {
		return fmt.Errorf("%d secret(s) of %s could not be decrypted with any key of the ring and were left as they are "+
			"(add the key that made them to SECRETS_KEYS, or delete those integrations)", rep.Unreadable, strings.Join(rep.UnreadableIDs, ", "))
	}
	return nil
}
