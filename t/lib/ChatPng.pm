package ChatPng;

# Images for the media tests: a valid PNG of w x h whose pixels are its
# seed, so that two seeds never make the same bytes (deduplication is by
# content).

use strict;
use warnings;

use Compress::Zlib ();

sub png {
    my ($w, $h, $seed) = @_;
    my $chunk = sub {
        my ($type, $data) = @_;
        return pack("N", length $data) . $type . $data
               . pack("N", Compress::Zlib::crc32($type . $data));
    };
    my $raw = join "", map { "\0" . (chr($seed % 256) x (3 * $w)) } 1 .. $h;
    return "\x89PNG\r\n\x1a\n"
           . $chunk->("IHDR", pack("NNCCCCC", $w, $h, 8, 2, 0, 0, 0))
           . $chunk->("IDAT", Compress::Zlib::compress($raw))
           . $chunk->("IEND", "");
}

1;
