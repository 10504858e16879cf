# The indexes README's "MongoDB in production" lists are the ones the
# module makes: each worker creates them as it starts, and this reads
# them back from the store (listIndexes), so the table cannot drift from
# the code.

use Test::Nginx::Socket;
use ChatTest;
use ChatChats;
use ChatMongo;
use Time::HiRes ();

BEGIN { ChatChats::init("657") }

our $Got;

# (collection, index name) of every row of the README's table, but _id
# (always there) and the text index (chat_search_text_index on only)
sub listed {
    my $root = $ENV{TEST_NGINX_ROOT} || ".";
    open my $f, '<', "$root/README.md" or die "README.md: $!";
    my ($in, @want);
    while (<$f>) {
        $in = 1 if /^## MongoDB in production/;
        next unless $in;
        last if /^## / && !/^## MongoDB in production/;
        next unless /^\| `/;
        my ($colls, $idx) = (split /\|/)[1, 2];
        my @c = $colls =~ /`([A-Za-z]+)`/g;
        my @i = grep { $_ ne "_id" } $idx =~ /`([A-Za-z_0-9]+)`/g;
        for my $c (@c) { push @want, [ $c, $_ ] for @i }
    }
    return @want;
}

# names of a collection's indexes, from the raw reply (the names are
# strings in the cursor's first batch)
sub missing {
    my ($mongo, @want) = @_;
    my @miss;
    for my $w (@want) {
        my $r = eval { $mongo->command([ listIndexes => $w->[0] ]) };
        my $raw = $r ? $r->{cursor} // "" : "";
        push @miss, "$w->[0].$w->[1]"
            unless index($raw, "name\0") >= 0
                   && index($raw, "$w->[1]\0") >= 0;
    }
    return @miss;
}

# one block: a reload between blocks (TEST_NGINX_USE_HUP) would add nothing
if ($ENV{TEST_NGINX_USE_HUP}) {
    plan skip_all => "one block: nothing for the reload pass to add";
} else {
    plan 'no_plan';
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: every index the README lists exists once the workers started
--- init
my @want = main::listed();
die "the README's table is empty" if @want < 20;
my $mongo = ChatMongo->new(port => $ENV{TEST_NGINX_MONGO_PORT});
my @miss;
# index creation runs in the thread pool as each worker starts
for (1 .. 50) {
    @miss = main::missing($mongo, @want);
    last unless @miss;
    Time::HiRes::sleep(0.2);
}
$main::Got = @miss ? "missing: @miss" : "every listed index exists";
Test::More::diag(scalar(@want) . " indexes listed");
--- request
GET /api/chats
--- error_code: 401
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
every listed index exists
--- no_error_log
[error]
[alert]
[emerg]
