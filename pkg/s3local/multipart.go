package s3local

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"
)

// diskBackend adds multipart uploads kept on disk to a gofakes3 backend.
// gofakes3's own fallback holds every part in memory and then copies them
// into one buffer on completion, which would make the local server use twice
// the size of every open 50 MiB export file.
type diskBackend struct {
	gofakes3.Backend
	dir string

	mu      sync.Mutex
	uploads map[gofakes3.UploadID]*upload
}

var _ gofakes3.MultipartBackend = (*diskBackend)(nil)

type upload struct {
	bucket, object string
	meta           map[string]string
	initiated      time.Time
	parts          map[int]part
}

type part struct {
	etag     string
	size     int64
	modified time.Time
}

func (b *diskBackend) get(bucket, object string, id gofakes3.UploadID) (*upload, error) {
	u, ok := b.uploads[id]
	if !ok || u.bucket != bucket || u.object != object {
		return nil, gofakes3.ErrNoSuchUpload
	}
	return u, nil
}

func (b *diskBackend) partPath(id gofakes3.UploadID, n int) string {
	return filepath.Join(b.dir, string(id), strconv.Itoa(n))
}

func (b *diskBackend) CreateMultipartUpload(bucket, object string, meta map[string]string) (gofakes3.UploadID, error) {
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	id := gofakes3.UploadID(hex.EncodeToString(raw[:]))
	if err := os.MkdirAll(filepath.Join(b.dir, string(id)), 0o700); err != nil {
		return "", err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.uploads[id] = &upload{bucket: bucket, object: object, meta: meta, initiated: time.Now(), parts: map[int]part{}}
	return id, nil
}

func (b *diskBackend) UploadPart(bucket, object string, id gofakes3.UploadID, n int, contentLength int64, input io.Reader) (string, error) {
	if n < 1 || n > gofakes3.MaxUploadPartNumber {
		return "", gofakes3.ErrInvalidPart
	}
	b.mu.Lock()
	_, err := b.get(bucket, object, id)
	b.mu.Unlock()
	if err != nil {
		return "", err
	}
	// Written to a temporary name and renamed, so a retried part that fails
	// half-way never replaces a complete earlier copy.
	path := b.partPath(id, n)
	f, err := os.CreateTemp(filepath.Dir(path), "part-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	h := md5.New()
	size, err := io.Copy(io.MultiWriter(f, h), input)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	if size != contentLength {
		return "", gofakes3.ErrIncompleteBody
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	u, err := b.get(bucket, object, id)
	if err != nil {
		return "", err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return "", err
	}
	etag := `"` + hex.EncodeToString(h.Sum(nil)) + `"`
	u.parts[n] = part{etag: etag, size: size, modified: time.Now()}
	return etag, nil
}

func (b *diskBackend) CompleteMultipartUpload(bucket, object string, id gofakes3.UploadID, in *gofakes3.CompleteMultipartUploadRequest) (gofakes3.VersionID, string, error) {
	b.mu.Lock()
	u, err := b.get(bucket, object, id)
	if err != nil {
		b.mu.Unlock()
		return "", "", err
	}
	// Claimed under the lock so a concurrent Complete or Abort of the same
	// upload gets NoSuchUpload instead of racing on the part files.
	delete(b.uploads, id)
	b.mu.Unlock()
	restore := func() {
		b.mu.Lock()
		b.uploads[id] = u
		b.mu.Unlock()
	}

	if len(in.Parts) == 0 {
		restore()
		return "", "", gofakes3.ErrorMessage(gofakes3.ErrMalformedXML, "no parts in complete request")
	}
	var (
		size    int64
		readers []io.Reader
		files   []*os.File
		sums    = md5.New()
	)
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	last := 0
	for _, p := range in.Parts {
		if p.PartNumber <= last {
			restore()
			return "", "", gofakes3.ErrInvalidPartOrder
		}
		last = p.PartNumber
		got, ok := u.parts[p.PartNumber]
		if !ok || strings.Trim(p.ETag, `"`) != strings.Trim(got.etag, `"`) {
			restore()
			return "", "", gofakes3.ErrorMessagef(gofakes3.ErrInvalidPart, "unknown part %d or etag", p.PartNumber)
		}
		raw, _ := hex.DecodeString(strings.Trim(got.etag, `"`))
		sums.Write(raw)
		f, err := os.Open(b.partPath(id, p.PartNumber))
		if err != nil {
			restore()
			return "", "", err
		}
		files = append(files, f)
		readers = append(readers, f)
		size += got.size
	}
	res, err := b.PutObject(bucket, object, u.meta, io.MultiReader(readers...), size, nil)
	if err != nil {
		restore()
		return "", "", err
	}
	_ = os.RemoveAll(filepath.Join(b.dir, string(id)))
	return res.VersionID, fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(sums.Sum(nil)), len(in.Parts)), nil
}

func (b *diskBackend) AbortMultipartUpload(bucket, object string, id gofakes3.UploadID) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, err := b.get(bucket, object, id); err != nil {
		return err
	}
	delete(b.uploads, id)
	return os.RemoveAll(filepath.Join(b.dir, string(id)))
}

func (b *diskBackend) ListParts(bucket, object string, id gofakes3.UploadID, marker int, limit int64) (*gofakes3.ListMultipartUploadPartsResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	u, err := b.get(bucket, object, id)
	if err != nil {
		return nil, err
	}
	nums := make([]int, 0, len(u.parts))
	for n := range u.parts {
		if n > marker {
			nums = append(nums, n)
		}
	}
	sort.Ints(nums)
	res := &gofakes3.ListMultipartUploadPartsResult{
		Bucket: bucket, Key: object, UploadID: id, MaxParts: limit, PartNumberMarker: marker, StorageClass: "STANDARD",
	}
	for i, n := range nums {
		if int64(i) >= limit {
			res.IsTruncated = true
			res.NextPartNumberMarker = nums[i-1]
			break
		}
		p := u.parts[n]
		res.Parts = append(res.Parts, gofakes3.ListMultipartUploadPartItem{
			PartNumber: n, ETag: p.etag, Size: p.size, LastModified: gofakes3.NewContentTime(p.modified),
		})
	}
	return res, nil
}

// ListMultipartUploads lists a bucket's open uploads by key. Paging markers
// are honoured for the key only; the local stack never has enough open uploads
// for a finer cursor to matter.
func (b *diskBackend) ListMultipartUploads(bucket string, marker *gofakes3.UploadListMarker, prefix gofakes3.Prefix, limit int64) (*gofakes3.ListMultipartUploadsResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	res := &gofakes3.ListMultipartUploadsResult{Bucket: bucket, Prefix: prefix.Prefix, Delimiter: prefix.Delimiter, MaxUploads: limit}
	var items []gofakes3.ListMultipartUploadItem
	for id, u := range b.uploads {
		if u.bucket != bucket || !prefix.Match(u.object, nil) {
			continue
		}
		if marker != nil && u.object <= marker.Object {
			continue
		}
		items = append(items, gofakes3.ListMultipartUploadItem{
			Key: u.object, UploadID: id, StorageClass: "STANDARD", Initiated: gofakes3.NewContentTime(u.initiated),
		})
	}
	sort.Slice(items, func(i, j int) bool {
		if items[i].Key != items[j].Key {
			return items[i].Key < items[j].Key
		}
		return items[i].Initiated.Before(items[j].Initiated.Time)
	})
	if int64(len(items)) > limit {
		items = items[:limit]
		res.IsTruncated = true
		res.NextKeyMarker = items[len(items)-1].Key
	}
	res.Uploads = items
	return res, nil
}
