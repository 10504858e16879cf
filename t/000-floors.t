# The floors of ngx_chat_module (README, "Layout"): no folder includes one
# on its own or a higher floor, no two folders include each other, and the
# files of a folder include one another without a circle.  tools/floors
# prints what breaks the rule.

use strict;
use warnings;

use FindBin;
use Test::More tests => 2;

my $floors = "$FindBin::Bin/../tools/floors";

my $out = `python3 "$floors" 2>&1`;
is($?, 0, 'tools/floors finds nothing') or diag($out);
is($out, '', 'and prints nothing');
