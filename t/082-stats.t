# chat_stats: the operator's counts of users that no counter can give
# (distinct users active in a day, a week, 30 days; new in a day), from
# MongoDB.  The database is shared with the other files: what is checked
# is what this file's users change.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use ChatRT;
use ChatMongo;
use JSON::PP;
use Time::HiRes qw(sleep time);

our ($Got, %Id);
*Id = \%ChatChats::Id;

BEGIN {
    ChatChats::init("782", "chat_active_walk 1s;");
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", <<'_EOC_') unless defined $block->config;
    location /api/ { chat_api; }
    location /ws { chat_ws; }
    location = /stats { chat_stats; }
_EOC_
    $block->set_value("timeout", 30);
    $block->set_value("no_error_log", "[error]\n[alert]\n[emerg]\n")
        unless defined $block->no_error_log;
});

sub main::stats {
    my $r = HTTP::Tiny->new->get(
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/stats");
    die "stats: $r->{status} $r->{content}" unless $r->{status} == 200;
    return decode_json($r->{content})->{users};
}

# lastSeenAt of $who, $days ago, written as presence would have
sub main::last_seen {
    my ($who, $days) = @_;
    my $m = ChatMongo->new(port => $ENV{TEST_NGINX_MONGO_PORT});
    $m->command(ChatMongo::doc(update => "users", updates => [
        ChatMongo::doc(q => ChatMongo::doc(_id => ChatMongo::oid($Id{$who})),
            u => ChatMongo::doc('$set' => ChatMongo::doc(
                lastSeenAt => ChatMongo::date(int((time - $days * 86400) * 1000)),
                online => JSON::PP::false()))) ]));
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: new users count as new; one with a socket open as active today; one last seen 3 days ago this week and month; one 10 days ago this month only
--- init
my $s0 = main::stats();
ChatChats::setup();
my $s1 = main::stats();
main::last_seen(bob => 10);
main::last_seen(carol => 3);
my $ws = ChatRT::connect("alice");
# the walk (1 s here) marks her active: until it shows
my $s2;
for (1 .. 50) {
    $s2 = main::stats();
    last if $s2->{day} > $s1->{day};
    sleep 0.1;
}
my @r;
push @r, "keys: " . join(",", sort keys %$s2);
push @r, "signed in: total +" . ($s1->{total} - $s0->{total})
         . " new +" . ($s1->{new} - $s0->{new});
push @r, "active: day +" . ($s2->{day} - $s1->{day})
         . " week +" . ($s2->{week} - $s1->{week})
         . " month +" . ($s2->{month} - $s1->{month});
close $ws;
$main::Got = join "\n", @r;
--- request
GET /stats
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
keys: day,month,new,total,week
signed in: total +3 new +3
active: day +1 week +2 month +3



=== TEST 2: only GET: other methods 405
--- request
POST /stats
--- error_code: 405
