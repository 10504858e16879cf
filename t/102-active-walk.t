# The stats' mark of activity (activeAt): a sign-in writes none; each
# worker walks its users once every chat_active_walk (here 1 s) and marks
# those online whose mark in Redis is an hour old or missing, so a user
# counts as active from at most a walk after signing in, a socket open
# for hours is marked every hour, and a mark within the hour costs the
# store nothing.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use ChatRT;
use ChatMongo;
use Time::HiRes ();

our ($Got, %Id);
*Id = \%ChatChats::Id;

BEGIN {
    ChatChats::init("787", "chat_active_walk 1s;");
}

ChatTest::got_blocks(<<'_EOC_', 60);
    location /api/ { chat_api; }
    location /ws { chat_ws; }
_EOC_

# dave's document: how many match these conditions (0 or 1)
sub main::dave_doc {
    my %cond = @_;
    my $m = ChatMongo->new(port => $ENV{TEST_NGINX_MONGO_PORT});
    my $r = $m->command(ChatMongo::doc(count => "users",
        query => ChatMongo::doc(_id => ChatMongo::oid($ChatChats::Id{dave}), %cond)));
    close $m->{sock};
    return $r->{n};
}

# dave marked active at or after $since (ms), once he is (5 s at most)
sub main::marked_since {
    my ($since) = @_;
    my $n;
    for (1 .. 50) {
        $n = main::dave_doc(activeAt => ChatMongo::doc(
                                '$gte' => ChatMongo::date(int($since))));
        last if $n;
        Time::HiRes::sleep(0.1);
    }
    return $n;
}

sub main::redis {
    my $rp = $ENV{TEST_NGINX_REDIS_PORT};
    my $out = `redis-cli -p $rp @_`;
    chomp $out;
    return $out;
}

# the commands that write that FerretDB ran since $before
sub main::mongo_writes {
    my ($before) = @_;
    my $now = ChatMongo::command_counts($ENV{TEST_NGINX_MONGO_PORT});
    my $n = 0;
    for my $c (qw(insert update delete findAndModify)) {
        $n += ($now->{$c} // 0) - ($before->{$c} // 0);
    }
    return $n;
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a sign-in is marked active by the walk within about a second; while the socket stays open, a mark two hours old is marked again; a mark within the hour writes nothing however often the walk visits
--- init
ChatChats::setup("dave");
my @r;
my $lid = lc $ChatChats::Id{dave};
my $t0 = int(Time::HiRes::time() * 1000);
my $s = ChatRT::connect("dave");
push @r, "marked:" . main::marked_since($t0 - 1000);
push @r, "redis_mark:" . (main::redis("HGET presence:h:$lid a") =~ /^\d+$/ ? 1 : 0);

# the walk goes on: dave's mark is fresh, nothing is written
my $counts = ChatMongo::command_counts($ENV{TEST_NGINX_MONGO_PORT});
Time::HiRes::sleep(2.5);
push @r, "writes:" . main::mongo_writes($counts);

# the same socket, two hours later (his mark aged in Redis)
my $old = int(Time::HiRes::time() * 1000) - 7200 * 1000;
main::redis("HSET presence:h:$lid a $old");
my $t1 = int(Time::HiRes::time() * 1000);
push @r, "marked_again:" . main::marked_since($t1 - 1000);
close $s;
$main::Got = "@r";
--- response_body
marked:1 redis_mark:1 writes:0 marked_again:1
--- no_error_log
[error]
[alert]
[emerg]
