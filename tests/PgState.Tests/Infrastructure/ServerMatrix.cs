namespace PgState.Tests.Infrastructure;

/// <summary>
/// A PostgreSQL major as a type, so that a test class is written once and declared once per major:
/// an abstract class holds the tests and nests <c>Pg13</c> … <c>Pg18</c>, each with its own
/// <see cref="ClusterFixture{TMajor}"/>. Test names then carry the major (<c>HbaApplyTests+Pg17.…</c>),
/// which is how scripts/test.sh counts results per version. The nested classes of one major share a
/// collection and its cluster: the majors run side by side, at most maxParallelThreads at a time.
/// </summary>
public interface IServerMajor
{
    static abstract int Major { get; }
}

public sealed class Major13 : IServerMajor
{
    public static int Major => 13;
}

public sealed class Major14 : IServerMajor
{
    public static int Major => 14;
}

public sealed class Major15 : IServerMajor
{
    public static int Major => 15;
}

public sealed class Major16 : IServerMajor
{
    public static int Major => 16;
}

public sealed class Major17 : IServerMajor
{
    public static int Major => 17;
}

public sealed class Major18 : IServerMajor
{
    public static int Major => 18;
}

/// <summary>
/// One cluster of <typeparamref name="TMajor"/>, shared by every matrix class of that major (one
/// collection per major: its classes run one after the other, each from a reset cluster, so the
/// matrix starts six clusters, not six per class). When that major's server binaries are missing,
/// every test of the collection fails with the reason (run scripts/fetch-postgres.sh): a silently
/// skipped major would hide exactly the breakage the matrix exists to find.
/// </summary>
public sealed class ClusterFixture<TMajor> : ClusterFixture
    where TMajor : IServerMajor
{
    protected override int Major => TMajor.Major;
}

/// <summary>A cluster of <typeparamref name="TMajor"/> with a parameter on its command line (ALTER SYSTEM cannot win), one per class.</summary>
public sealed class CommandLineClusterFixture<TMajor> : ClusterFixture
    where TMajor : IServerMajor
{
    protected override int Major => TMajor.Major;

    protected override string[] ServerOptions => ["archive_timeout=60"];
}

/// <summary>The collections of the version matrix, one per major (the nested PgNN classes name theirs).</summary>
public static class Majors
{
    public const string Pg13 = "PostgreSQL 13";
    public const string Pg14 = "PostgreSQL 14";
    public const string Pg15 = "PostgreSQL 15";
    public const string Pg16 = "PostgreSQL 16";
    public const string Pg17 = "PostgreSQL 17";
    public const string Pg18 = "PostgreSQL 18";
}

[CollectionDefinition(Majors.Pg13)]
public sealed class Pg13Collection : ICollectionFixture<ClusterFixture<Major13>>;

[CollectionDefinition(Majors.Pg14)]
public sealed class Pg14Collection : ICollectionFixture<ClusterFixture<Major14>>;

[CollectionDefinition(Majors.Pg15)]
public sealed class Pg15Collection : ICollectionFixture<ClusterFixture<Major15>>;

[CollectionDefinition(Majors.Pg16)]
public sealed class Pg16Collection : ICollectionFixture<ClusterFixture<Major16>>;

[CollectionDefinition(Majors.Pg17)]
public sealed class Pg17Collection : ICollectionFixture<ClusterFixture<Major17>>;

[CollectionDefinition(Majors.Pg18)]
public sealed class Pg18Collection : ICollectionFixture<ClusterFixture<Major18>>;
