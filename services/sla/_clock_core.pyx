# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The hot path of BusinessClock in C: business seconds between instants and deadlines after budgets.

Every SLA timer asks these two questions, so they are compiled; calendar.py holds the same two
methods in Python (_InterpretedClockCore), which is the reference they are tested against and what
runs where this module was not built. Datetimes are read and made through CPython's datetime C API:
converting them costs more than the search itself.

The merged openings are installed by BusinessClock._cover as C arrays. An instant outside the
range they answer exactly is handed back to BusinessClock._cover or _extend_beyond, in Python,
which build more years and install them again.
"""

from cpython.datetime cimport (
    PyDateTime_DATE_GET_HOUR,
    PyDateTime_DATE_GET_MINUTE,
    PyDateTime_DATE_GET_SECOND,
    PyDateTime_GET_DAY,
    PyDateTime_GET_MONTH,
    PyDateTime_GET_YEAR,
    datetime,
    datetime_new,
    datetime_tzinfo,
    import_datetime,
    timedelta,
    timedelta_days,
    timedelta_seconds,
)
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

from datetime import timezone

import_datetime()

cdef object UTC = timezone.utc
cdef int64_t SECONDS_PER_DAY = 86_400


cdef inline int64_t days_from_civil(int64_t year, int64_t month, int64_t day) noexcept:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil)."""
    year -= month <= 2
    cdef int64_t era = (year if year >= 0 else year - 399) // 400
    cdef int64_t year_of_era = year - era * 400
    cdef int64_t day_of_year = (153 * (month - 3 if month > 2 else month + 9) + 2) // 5 + day - 1
    cdef int64_t day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468


cdef int64_t epoch_seconds(datetime moment) except? -1:
    """Whole epoch seconds of an aware datetime, rounding down sub-second parts."""
    cdef int64_t wall = (
        days_from_civil(PyDateTime_GET_YEAR(moment), PyDateTime_GET_MONTH(moment), PyDateTime_GET_DAY(moment))
        * SECONDS_PER_DAY
        + PyDateTime_DATE_GET_HOUR(moment) * 3600
        + PyDateTime_DATE_GET_MINUTE(moment) * 60
        + PyDateTime_DATE_GET_SECOND(moment)
    )
    zone = datetime_tzinfo(moment)
    if zone is UTC:  # what asyncpg returns and the services pass: no offset to ask for
        return wall
    offset = None if zone is None else moment.utcoffset()
    if offset is None:
        raise ValueError(f"expected a timezone-aware datetime, got {moment!r}")
    return wall - (timedelta_days(<timedelta>offset) * SECONDS_PER_DAY + timedelta_seconds(<timedelta>offset))


cdef datetime utc_datetime(int64_t moment):
    """The UTC datetime of epoch seconds (H. Hinnant's civil_from_days)."""
    cdef int64_t days = moment // SECONDS_PER_DAY
    cdef int64_t second_of_day = moment - days * SECONDS_PER_DAY
    days += 719_468
    cdef int64_t era = (days if days >= 0 else days - 146_096) // 146_097
    cdef int64_t day_of_era = days - era * 146_097
    cdef int64_t year_of_era = (
        day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096
    ) // 365
    cdef int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    cdef int64_t shifted_month = (5 * day_of_year + 2) // 153
    cdef int64_t day = day_of_year - (153 * shifted_month + 2) // 5 + 1
    cdef int64_t month = shifted_month + 3 if shifted_month < 10 else shifted_month - 9
    cdef int64_t year = year_of_era + era * 400 + (month <= 2)
    return datetime_new(
        year, month, day, second_of_day // 3600, second_of_day % 3600 // 60, second_of_day % 60, 0, UTC
    )


cdef inline Py_ssize_t bisect_right(const int64_t* values, Py_ssize_t count, int64_t x) noexcept:
    cdef Py_ssize_t low = 0, high = count, middle
    while low < high:
        middle = (low + high) >> 1
        if x < values[middle]:
            high = middle
        else:
            low = middle + 1
    return low


cdef inline Py_ssize_t bisect_left(const int64_t* values, Py_ssize_t low, Py_ssize_t high, int64_t x) noexcept:
    cdef Py_ssize_t middle
    while low < high:
        middle = (low + high) >> 1
        if values[middle] < x:
            low = middle + 1
        else:
            high = middle
    return low


cdef int64_t* copied(values) except NULL:
    cdef Py_ssize_t count = len(values), index
    cdef int64_t* array = <int64_t*>malloc((count if count else 1) * sizeof(int64_t))
    if array is NULL:
        raise MemoryError()
    for index in range(count):
        array[index] = values[index]
    return array


cdef class ClockCore:
    """Business-time arithmetic over installed openings; a base class of BusinessClock."""

    cdef int64_t* _starts
    cdef int64_t* _ends
    # _cumulative[i] is the business time before _starts[i]; it has one more entry than _starts.
    cdef int64_t* _cumulative
    cdef Py_ssize_t _count
    cdef int64_t _exact_from
    cdef int64_t _exact_until

    def __dealloc__(self):
        free(self._starts)
        free(self._ends)
        free(self._cumulative)

    def _install(self, openings):
        """Copy merged openings (calendar._Openings) into C arrays."""
        starts, ends, cumulative, exact_from, exact_until = openings
        cdef int64_t* new_starts = copied(starts)
        cdef int64_t* new_ends = copied(ends)
        cdef int64_t* new_cumulative = copied(cumulative)
        free(self._starts)
        free(self._ends)
        free(self._cumulative)
        self._starts, self._ends, self._cumulative = new_starts, new_ends, new_cumulative
        self._count = len(starts)
        self._exact_from, self._exact_until = exact_from, exact_until

    def business_seconds_between(self, *, datetime start not None, datetime end not None):
        """Business seconds in [start, end); zero when end is not after start."""
        cdef int64_t first = epoch_seconds(start)
        cdef int64_t last = epoch_seconds(end)
        if last <= first:
            return 0
        if first < self._exact_from or last >= self._exact_until:
            self._cover(first, last)
        cdef Py_ssize_t index = bisect_right(self._starts, self._count, last) - 1
        if index < 0:
            return 0
        cdef int64_t close = self._ends[index]
        cdef int64_t elapsed = self._cumulative[index] + (last if last < close else close) - self._starts[index]
        index = bisect_right(self._starts, self._count, first) - 1
        if index >= 0:
            close = self._ends[index]
            elapsed -= self._cumulative[index] + (first if first < close else close) - self._starts[index]
        return elapsed

    def add_business_seconds(self, *, datetime start not None, int64_t seconds):
        """The earliest instant by which `seconds` business seconds have passed since start, in UTC."""
        if seconds < 0:
            raise ValueError(f"seconds must not be negative, got {seconds}")
        if seconds == 0:
            # Counting starts at the next opening, so a zero budget lands there, not in a closed period.
            return self.next_opening(at=start)
        cdef int64_t moment = epoch_seconds(start)
        cdef int64_t target, close, deadline
        cdef Py_ssize_t index
        if not self._exact_from <= moment < self._exact_until:
            self._cover(moment, moment)
        while True:
            index = bisect_right(self._starts, self._count, moment) - 1
            target = seconds
            if index >= 0:
                close = self._ends[index]
                target += self._cumulative[index] + (moment if moment < close else close) - self._starts[index]
            # The first interval whose end reaches the target; a target met exactly at a closing
            # instant lands on that closing instant rather than on the next opening.
            index = bisect_left(self._cumulative, 1, self._count + 1, target) - 1
            if index < self._count:
                deadline = self._starts[index] + target - self._cumulative[index]
                if deadline < self._exact_until:
                    return utc_datetime(deadline)
            self._extend_beyond(moment)
