package schema

import "github.com/twmb/franz-go/pkg/sr"

// NewDecoderWithReleases is NewDecoder with the releases whose fields
// count as known, for tests of schemas this build never released.
func NewDecoderWithReleases(cl *sr.Client, releases []AvroRelease, maxSchemas int) (*Decoder, error) {
	reader, err := ParseAvro()
	if err != nil {
		return nil, err
	}
	return newDecoder(cl, reader, releases, maxSchemas)
}
