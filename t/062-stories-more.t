# Stories, second part: rate limits on posting, viewing and reacting (429
# rate_limited with Retry-After past the limit, allowed again after the
# window); highlights (create, update, add and remove stories, a user's
# highlights with their privacy and blocks, stories kept past their
# lifetime, delete, bad input with nothing stored); the sweeper of expired
# stories that are in no highlight, checked in MongoDB itself.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use ChatMongo;
use JSON::PP;
use Time::HiRes ();

our ($Base, $LimitConf, $SweepConf);

BEGIN {
    ChatChats::init("662", "");

    $Base = ChatTest::chat_http_config() . qq{
    chat_sms_provider twilio;
    chat_twilio_base_url http://127.0.0.1:\$TEST_NGINX_FAKE_TWILIO_PORT;
    chat_twilio_account_sid ACtest;
    chat_twilio_auth_token secret;
    chat_twilio_from +15005550006;
    chat_otp_ip_limit 1000;
};

    $LimitConf = $Base . qq{
    chat_story_post_limit 3 2s;
    chat_story_view_limit 2 2s;
    chat_story_react_limit 2 2s;
};

    $SweepConf = $Base . qq{
    chat_story_lifetime 2s;
    chat_story_sweep_interval 500ms;
};
}

*Id = \%ChatChats::Id;
our (%Id, $Got);

sub call { ChatChats::call(@_) }
sub api { ChatChats::api(@_) }

sub setup {
    ChatChats::setup(qw(dave erin));
    return if $main::Ready;
    $main::Ready = 1;
    for my $who (qw(bob carol dave)) {
        api(alice => POST => "/api/users/add-contact", { userId => $Id{$who} });
        api($who => POST => "/api/users/add-contact", { userId => $Id{alice} });
    }
}

sub text { { type => "text", text => shift } }

# a story in MongoDB, by id: 1 or 0
sub stored {
    my ($coll, $id) = @_;
    my $m = ChatMongo->new(port => $ENV{TEST_NGINX_MONGO_PORT});
    my $r = $m->command(ChatMongo::doc(count => $coll,
        query => ChatMongo::doc(_id => ChatMongo::oid($id))));
    return $r->{n};
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: posting past chat_story_post_limit: 429 rate_limited with Retry-After, then allowed after the window
--- http_config eval: $main::LimitConf
--- init
main::setup();
my @s;
for my $i (1 .. 4) {
    my ($st, $b) = main::call(erin => POST => "/api/stories", main::text("limit $i"));
    push @s, $st;
    $main::Body = $b if $st == 429;
}
my $mine = main::api(erin => GET => "/api/stories/mine");
Time::HiRes::sleep(2.5);
my ($again) = main::call(erin => POST => "/api/stories", main::text("again"));
# the block's own request is the fourth of this window
main::call(erin => POST => "/api/stories", main::text("more $_")) for 1 .. 2;
$main::Got = "@s " . $main::Body->{error}{code} . " "
    . scalar(@{ $mine->{items} }) . " $again\n";
ChatChats::dyn($block, as => "erin", request => "POST /api/stories\n"
    . '{"type":"text","text":"x"}', error_code => 429);
--- response_headers_like
Retry-After: [12]
--- response_body_filters eval
sub { $main::Got }
--- response_body
201 201 201 429 rate_limited 3 201



=== TEST 2: reacting and viewing past their limits: 429, the view and the reaction kept as they were
--- http_config eval: $main::LimitConf
--- init
main::setup();
my $id = main::api(alice => POST => "/api/stories", main::text("react me"))->{story}{id};
my @r = map { (main::call(bob => POST => "/api/stories/$id/react", { emoji => $_ }))[0] }
        "\x{1f44d}", "\x{2764}", "\x{1f525}";
my @v = map { (main::call(carol => POST => "/api/stories/$id/view"))[0] } 1 .. 3;
my $views = main::api(alice => GET => "/api/stories/$id/views");
my ($b) = grep { $_->{userId} eq $main::Id{bob} } @{ $views->{items} };
Time::HiRes::sleep(2.5);
my ($again) = main::call(bob => POST => "/api/stories/$id/react", { emoji => "\x{1f525}" });
main::call(bob => POST => "/api/stories/$id/react", { emoji => "\x{1f525}" });
$main::Got = "@r @v " . ($b->{reaction} eq "\x{2764}" ? "kept" : "?")
    . " $again\n";
ChatChats::dyn($block, as => "bob", request => "POST /api/stories/$id/react\n"
    . '{"emoji":"x"}');
--- response_body_filters eval
sub { $main::Got }
--- response_body
200 200 429 201 200 429 kept 200
--- error_code: 429
