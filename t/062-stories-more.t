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

# documents of a collection in MongoDB whose key is the ObjectId id
sub stored {
    my ($coll, $key, $id) = @_;
    my $m = ChatMongo->new(port => $ENV{TEST_NGINX_MONGO_PORT});
    my $r = $m->command(ChatMongo::doc(count => $coll,
        query => ChatMongo::doc($key => ChatMongo::oid($id))));
    return $r->{n};
}

sub highlights {
    my ($who, $of) = @_;
    my $b = api($who => GET => "/api/users/$Id{$of}/highlights");
    return $b->{items};
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



=== TEST 3: a highlight made of my stories: 201, on my profile for my contacts (its default privacy), for everyone once it says so
--- init
main::setup();
my @s = map { main::api(alice => POST => "/api/stories", main::text("trip $_"))->{story}{id} } 1 .. 2;
my ($st, $b) = main::call(alice => POST => "/api/stories/highlights",
    { title => "Trip", storyIds => [ @s ], cover => $s[1] });
my $h = $b->{highlight};
$main::Hl = $h->{id};
@main::Trip = @s;
my $bob = main::highlights(bob => "alice");
my $erin = main::highlights(erin => "alice");
main::api(alice => PUT => "/api/stories/highlights/$h->{id}", { privacy => "everyone" });
my $erin2 = main::highlights(erin => "alice");
$main::Got = join " ", $st, $h->{title}, $h->{privacy},
    ($h->{cover} eq $s[1] ? "cover" : "?"),
    (join(",", @{ $h->{storyIds} }) eq join(",", @s) ? "ids" : "?"),
    scalar(@{ $h->{stories} }), $h->{stories}[0]{text},
    ($h->{userId} eq $main::Id{alice} ? "mine" : "?"),
    scalar(@$bob), (exists $bob->[0]{privacy} ? "?" : "noprivacy"),
    scalar(@$erin), scalar(@$erin2);
$main::Got .= "\n";
ChatChats::dyn($block, as => "erin", request => "GET /api/users/$main::Id{alice}/highlights");
--- response_body_filters eval
sub { $main::Got }
--- response_body
201 Trip contacts cover ids 2 trip 1 mine 1 noprivacy 0 1
--- error_code: 200



=== TEST 4: update: rename, add, remove, cover; only my stories; never empty; others' highlights are 404; delete
--- init
main::setup();
my ($s1, $s2) = @main::Trip;
my $s3 = main::api(alice => POST => "/api/stories", main::text("trip 3"))->{story}{id};
my $bobs = main::api(bob => POST => "/api/stories", main::text("bob's"))->{story}{id};
my $u = "/api/stories/highlights/$main::Hl";
my $h = main::api(alice => PUT => $u, { title => "Summer", addStoryIds => [ $s3 ],
    removeStoryIds => [ $s1 ], cover => $s3 })->{highlight};
my @r = ($h->{title}, join(",", map { $_ eq $s2 ? "s2" : $_ eq $s3 ? "s3" : "?" } @{ $h->{storyIds} }),
         $h->{cover} eq $s3 ? "cover" : "?");
my ($a1, $e1) = main::call(alice => PUT => $u, { addStoryIds => [ $bobs ] });
my ($a2, $e2) = main::call(alice => PUT => $u, { removeStoryIds => [ $s2, $s3 ] });
my ($a3, $e3) = main::call(alice => PUT => $u, { cover => $s1 });
my ($a4) = main::call(bob => PUT => $u, { title => "mine now" });
my ($a5) = main::call(bob => DELETE => $u);
my $after = main::highlights(alice => "alice");
push @r, $a1, $e1->{error}{code}, $e1->{error}{details}{field}, $a2,
    $e2->{error}{details}{field}, $a3, $e3->{error}{details}{field}, $a4, $a5,
    $after->[0]{title}, scalar(@{ $after->[0]{storyIds} });
my ($d, $db) = main::call(alice => DELETE => $u);
my ($d2) = main::call(alice => DELETE => $u);
push @r, $d, ($db->{deleted} ? "deleted" : "?"), $d2,
    scalar(@{ main::highlights(alice => "alice") });
$main::Got = "@r\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/users/$main::Id{alice}/highlights");
--- response_body_filters eval
sub { $main::Got }
--- response_body
Summer s2,s3 cover 422 invalid_value addStoryIds 422 removeStoryIds 422 cover 404 404 Summer 2 200 deleted 404 0
--- error_code: 200



=== TEST 5: bad input: the error envelope, 4xx, nothing stored
--- init
main::setup();
my $s = main::api(alice => POST => "/api/stories", main::text("bad"))->{story}{id};
my $bobs = main::api(bob => POST => "/api/stories", main::text("bob's 2"))->{story}{id};
my @bad = (
    {}, { title => 5, storyIds => [ $s ] }, { title => "", storyIds => [ $s ] },
    { title => "x" x 51, storyIds => [ $s ] }, { title => "a\x01b", storyIds => [ $s ] },
    { title => "t" }, { title => "t", storyIds => "x" }, { title => "t", storyIds => [] },
    { title => "t", storyIds => [ 1 ] }, { title => "t", storyIds => [ "nothex" ] },
    { title => "t", storyIds => [ ($s) x 2 ] },
    { title => "t", storyIds => [ map { sprintf "%024x", $_ } 1 .. 101 ] },
    { title => "t", storyIds => [ $s ], cover => 5 },
    { title => "t", storyIds => [ $s ], cover => "nothex" },
    { title => "t", storyIds => [ $s ], privacy => "friends" },
    { title => "t", storyIds => [ $s ], privacy => 1 },
    { title => "t", storyIds => [ $bobs ] },
    { title => "t", storyIds => [ $s ], cover => $bobs },
);
my @r = map {
    my ($st, $b) = main::call(alice => POST => "/api/stories/highlights", $_);
    "$st:" . ($b->{error}{code} // "?");
} @bad;
my $h = main::api(alice => POST => "/api/stories/highlights", { title => "ok", storyIds => [ $s ] })->{highlight};
my ($u1, $b1) = main::call(alice => PUT => "/api/stories/highlights/$h->{id}", {});
my ($u2) = main::call(alice => PUT => "/api/stories/highlights/$h->{id}", { addStoryIds => "x" });
my ($u3) = main::call(alice => PUT => "/api/stories/highlights/$h->{id}", { title => [] });
my ($u4) = main::call(alice => PUT => "/api/stories/highlights/nothex", { title => "x" });
my ($u5) = main::call(alice => GET => "/api/users/nothex/highlights");
my $n = scalar @{ main::highlights(alice => "alice") };
main::api(alice => DELETE => "/api/stories/highlights/$h->{id}");
$main::Got = "@r\n$u1:$b1->{error}{code} $u2 $u3 $u4 $u5 $n\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/users/$main::Id{alice}/highlights");
--- response_body_filters eval
sub { $main::Got }
--- response_body
400:invalid_request 400:invalid_request 400:invalid_request 400:invalid_request 400:invalid_request 400:invalid_request 400:invalid_request 400:invalid_request 400:invalid_request 400:invalid_request 400:invalid_request 400:invalid_request 400:invalid_request 400:invalid_request 400:invalid_request 400:invalid_request 422:invalid_value 422:invalid_value
400:invalid_request 400 400 404 404 1
--- error_code: 200



=== TEST 6: a block either way hides highlights, as it hides stories
--- init
main::setup();
my $s = main::api(alice => POST => "/api/stories", main::text("hl block"))->{story}{id};
my $h = main::api(alice => POST => "/api/stories/highlights",
    { title => "Open", storyIds => [ $s ], privacy => "everyone" })->{highlight};
my $has = sub { scalar grep { $_->{id} eq $h->{id} } @{ main::highlights($_[0] => "alice") } };
my @before = map { $has->($_) } qw(carol dave);
main::api(dave => POST => "/api/users/$main::Id{alice}/block");
main::api(alice => POST => "/api/users/$main::Id{carol}/block");
my @after = map { $has->($_) } qw(carol dave);
my @get = map { (main::call($_ => GET => "/api/stories/$s"))[0] } qw(carol dave);
main::api(dave => DELETE => "/api/users/$main::Id{alice}/block");
main::api(alice => DELETE => "/api/users/$main::Id{carol}/block");
main::api(alice => DELETE => "/api/stories/highlights/$h->{id}");
$main::Got = "@before @after @get\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/users/$main::Id{alice}/highlights");
--- response_body_filters eval
sub { $main::Got }
--- response_body
1 1 0 0 404 404
--- error_code: 200



=== TEST 7: the sweeper (lifetime 2s, every 500ms): an expired story in no highlight is gone from MongoDB with its views; one in a highlight is kept, readable through it and by id, out of the feed and of mine
--- http_config eval: $main::SweepConf
--- init
main::setup();
my $gone = main::api(alice => POST => "/api/stories", main::text("gone"))->{story}{id};
my $kept = main::api(alice => POST => "/api/stories", main::text("kept"))->{story}{id};
main::api(bob => POST => "/api/stories/$_/view") for $gone, $kept;
my $h = main::api(alice => POST => "/api/stories/highlights",
    { title => "Kept", storyIds => [ $kept ], privacy => "everyone" })->{highlight};
my @before = (main::stored(stories => _id => $gone), main::stored(storyviews => storyId => $gone));
# the deadline, then a few sweeps
Time::HiRes::sleep(3.5);
my @after = (main::stored(stories => _id => $gone), main::stored(storyviews => storyId => $gone),
             main::stored(stories => _id => $kept));
my $hl = main::highlights(erin => "alice");
my ($hk) = grep { $_->{id} eq $h->{id} } @$hl;
my $feed = main::api(bob => GET => "/api/stories");
my $mine = main::api(alice => GET => "/api/stories/mine");
my $in = sub { my $id = shift; (grep { $_->{id} eq $id } @_) ? 1 : 0 };
my @reads = ((main::call(bob => GET => "/api/stories/$kept"))[0],
             (main::call(erin => GET => "/api/stories/$kept"))[0],
             (main::call(bob => GET => "/api/stories/$gone"))[0],
             $in->($kept, @{ $hk->{stories} }),
             $in->($kept, map { @{ $_->{stories} } } @{ $feed->{items} }),
             $in->($kept, @{ $mine->{items} }));
# out of its last highlight, the next sweeps take it
main::api(alice => DELETE => "/api/stories/highlights/$h->{id}");
Time::HiRes::sleep(1.5);
my $last = main::stored(stories => _id => $kept);
$main::Got = "@before | @after | @reads | $last\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/stories/mine");
--- response_body_filters eval
sub { $main::Got }
--- response_body
1 1 | 0 0 1 | 200 200 404 1 0 0 | 0
--- error_code: 200

