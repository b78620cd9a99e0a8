//! Values addressed by small ids that stay unambiguous after removal: a
//! removed slot's generation moves on, so an old id no longer finds it.

/// A slot in a `Slab`: the generation tells a reused slot from the value
/// an old id named.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id {
    index: u32,
    generation: u32,
}

/// Values addressed by small ids that stay unambiguous after removal.
pub struct Slab<T> {
    slots: Vec<(u32, Option<T>)>,
    free: Vec<u32>,
    pub len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    pub fn get(&self, id: Id) -> Option<&T> {
        match self.slots.get(id.index as usize) {
            Some((g, Some(v))) if *g == id.generation => Some(v),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, id: Id) -> Option<&mut T> {
        match self.slots.get_mut(id.index as usize) {
            Some((g, Some(v))) if *g == id.generation => Some(v),
            _ => None,
        }
    }

    pub fn insert(&mut self, value: T) -> Id {
        self.len += 1;
        if let Some(index) = self.free.pop() {
            if let Some(slot) = self.slots.get_mut(index as usize) {
                slot.0 = slot.0.wrapping_add(1);
                slot.1 = Some(value);
                return Id {
                    index,
                    generation: slot.0,
                };
            }
        }
        let index = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
        self.slots.push((0, Some(value)));
        Id {
            index,
            generation: 0,
        }
    }

    pub fn remove(&mut self, id: Id) -> Option<T> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.0 != id.generation {
            return None;
        }
        let v = slot.1.take()?;
        self.free.push(id.index);
        self.len -= 1;
        Some(v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (Id, &T)> {
        self.slots.iter().enumerate().filter_map(|(i, (g, v))| {
            v.as_ref().map(|v| {
                (
                    Id {
                        index: i as u32,
                        generation: *g,
                    },
                    v,
                )
            })
        })
    }
}
